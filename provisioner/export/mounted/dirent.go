package mounted

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
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

// listingBytes is one getdents buffer: one page of a listing.
const listingBytes = 32 << 10

// listings are getdents buffers, reused across pages.
var listings = sync.Pool{New: func() any { b := make([]byte, listingBytes); return &b }}

// readPage reads one getdents buffer of the directory fd from the offset at and calls each with
// every entry but "." and ".."; next is where the listing goes on, eof that it had no more.
func readPage(fd int, at uint64, each func(d dirent, next uint64) error) (next uint64, eof bool, err error) {
	if _, err := unix.Seek(fd, int64(at), 0); err != nil {
		return at, false, err
	}
	bp := listings.Get().(*[]byte)
	defer listings.Put(bp)
	n, err := unix.Getdents(fd, *bp)
	if err != nil || n == 0 {
		return at, err == nil, err
	}
	next = at
	for b := (*bp)[:n]; ; {
		d, rest, ok, err := nextDirent(b)
		if err != nil || !ok {
			return next, false, err
		}
		b, next = rest, uint64(d.next)
		if d.name == "." || d.name == ".." {
			continue
		}
		if err := each(d, next); err != nil {
			return at, false, err
		}
	}
}
