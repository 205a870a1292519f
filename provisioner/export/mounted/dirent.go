package mounted

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// dirent is one linux_dirent64 of a getdents buffer.
type dirent struct {
	name string
	typ  uint8 // DT_*
	next int64 // the offset the entry after it starts at (d_off)
}

// nextDirent decodes the first entry of b and returns the rest of b; ok
// is false when b holds no more entries.
func nextDirent(b []byte) (d dirent, rest []byte, ok bool, err error) {
	const header = 19 // d_ino 8, d_off 8, d_reclen 2, d_type 1
	if len(b) < header {
		return d, nil, false, nil
	}
	reclen := int(binary.NativeEndian.Uint16(b[16:18]))
	if reclen < header || reclen > len(b) {
		return d, nil, false, fmt.Errorf("bad dirent of %d bytes", reclen)
	}
	name := b[header:reclen]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	d = dirent{name: string(name), typ: b[18], next: int64(binary.NativeEndian.Uint64(b[8:16]))}
	return d, b[reclen:], true, nil
}
