package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The XDR (RFC 4506) codec used for every message this package sends or
// receives. Encoding appends to a byte slice; decoding reads from a byte
// slice that holds one complete RPC record, so every length found on the
// wire is checked against the bytes actually present before anything is
// allocated: a hostile or broken reply cannot make the client allocate more
// than the record it already holds, and cannot make it panic.

// errShort is returned when a reply ends before the structure it carries.
var errShort = errors.New("xdr: reply truncated")

type encoder struct{ b []byte }

func (e *encoder) uint32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) uint64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }

func (e *encoder) bool(v bool) {
	if v {
		e.uint32(1)
	} else {
		e.uint32(0)
	}
}

// opaque writes variable-length opaque data (length, bytes, padding).
func (e *encoder) opaque(p []byte) {
	e.uint32(uint32(len(p)))
	e.fixed(p)
}

func (e *encoder) string(s string) {
	e.uint32(uint32(len(s)))
	e.b = append(e.b, s...)
	e.pad(len(s))
}

// fixed writes fixed-length opaque data (bytes and padding, no length).
func (e *encoder) fixed(p []byte) {
	e.b = append(e.b, p...)
	e.pad(len(p))
}

func (e *encoder) pad(n int) {
	if r := n % 4; r != 0 {
		e.b = append(e.b, make([]byte, 4-r)...)
	}
}

// decoder reads XDR from a byte slice. The first error sticks: later reads
// return zero values, so a decode function can read a whole structure and
// check d.err once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

// take consumes the next n bytes, or fails the decoder (nil) when fewer are left.
func (d *decoder) take(n int) []byte {
	if len(d.b) < n {
		d.fail(errShort)
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) uint32() uint32 {
	if b := d.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) uint64() uint64 {
	if b := d.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// bool reads an XDR boolean; anything but 0 or 1 is malformed.
func (d *decoder) bool() bool {
	switch v := d.uint32(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail(fmt.Errorf("xdr: bad boolean %d", v))
		return false
	}
}

// opaque reads variable-length opaque data of at most max bytes. The
// result aliases the record; callers that keep it must copy.
func (d *decoder) opaque(max uint32) []byte {
	n := d.uint32()
	if d.err != nil {
		return nil
	}
	if n > max {
		d.fail(fmt.Errorf("xdr: opaque of %d bytes exceeds limit %d", n, max))
		return nil
	}
	return d.fixed(n)
}

// fixed reads n bytes of fixed-length opaque data plus padding.
func (d *decoder) fixed(n uint32) []byte {
	padded := uint64(n) + uint64((4-n%4)%4)
	if uint64(len(d.b)) < padded {
		d.fail(errShort)
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[padded:]
	return p
}

func (d *decoder) skip(n int) {
	if len(d.b) < n {
		d.fail(errShort)
		return
	}
	d.b = d.b[n:]
}
