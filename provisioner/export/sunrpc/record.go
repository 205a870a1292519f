package sunrpc

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Record marking (RFC 5531 section 11): every RPC message on a stream is
// sent as one or more fragments, each preceded by a 4-byte header whose top
// bit marks the last fragment and whose low 31 bits give its length.

const LastFragment = 1 << 31

// ReadRecord reads one complete record of at most max bytes.
func ReadRecord(r io.Reader, max int) ([]byte, error) {
	var rec []byte
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if len(rec) > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		h := binary.BigEndian.Uint32(hdr[:])
		n := int(h &^ LastFragment)
		if len(rec)+n > max {
			return nil, fmt.Errorf("%w: record of more than %d bytes", ErrProtocol, max)
		}
		if rec == nil && h&LastFragment != 0 {
			rec = make([]byte, n)
			if _, err := io.ReadFull(r, rec); err != nil {
				return nil, unexpected(err)
			}
			return rec, nil
		}
		start := len(rec)
		rec = append(rec, make([]byte, n)...)
		if _, err := io.ReadFull(r, rec[start:]); err != nil {
			return nil, unexpected(err)
		}
		if h&LastFragment != 0 {
			return rec, nil
		}
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// frame sets the record mark of a message built after a 4-byte
// placeholder: one fragment, the last.
func Frame(msg []byte) {
	binary.BigEndian.PutUint32(msg, uint32(len(msg)-4)|LastFragment)
}
