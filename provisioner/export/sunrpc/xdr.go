package sunrpc

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

// ErrShort is returned when a reply ends before the structure it carries.
var ErrShort = errors.New("xdr: reply truncated")

// Encoder appends XDR to B.
type Encoder struct{ B []byte }

func (e *Encoder) Uint32(v uint32) { e.B = binary.BigEndian.AppendUint32(e.B, v) }
func (e *Encoder) Uint64(v uint64) { e.B = binary.BigEndian.AppendUint64(e.B, v) }

func (e *Encoder) Bool(v bool) {
	if v {
		e.Uint32(1)
	} else {
		e.Uint32(0)
	}
}

// opaque writes variable-length opaque data (length, bytes, padding).
func (e *Encoder) Opaque(p []byte) {
	e.Uint32(uint32(len(p)))
	e.Fixed(p)
}

func (e *Encoder) String(s string) {
	e.Uint32(uint32(len(s)))
	e.B = append(e.B, s...)
	e.Pad(len(s))
}

// fixed writes fixed-length opaque data (bytes and padding, no length).
func (e *Encoder) Fixed(p []byte) {
	e.B = append(e.B, p...)
	e.Pad(len(p))
}

func (e *Encoder) Pad(n int) {
	if r := n % 4; r != 0 {
		e.B = append(e.B, make([]byte, 4-r)...)
	}
}

// Decoder reads XDR from a byte slice. The first error sticks: later reads
// return zero values, so a decode function can read a whole structure and
// check d.Err once at the end.
type Decoder struct {
	B   []byte
	Err error
}

func (d *Decoder) Fail(err error) {
	if d.Err == nil {
		d.Err = err
	}
	d.B = nil
}

// take consumes the next n bytes, or fails the decoder (nil) when fewer are left.
func (d *Decoder) Take(n int) []byte {
	if len(d.B) < n {
		d.Fail(ErrShort)
		return nil
	}
	b := d.B[:n]
	d.B = d.B[n:]
	return b
}

func (d *Decoder) Uint32() uint32 {
	if b := d.Take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *Decoder) Uint64() uint64 {
	if b := d.Take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// bool reads an XDR boolean; anything but 0 or 1 is malformed.
func (d *Decoder) Bool() bool {
	switch v := d.Uint32(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.Fail(fmt.Errorf("xdr: bad boolean %d", v))
		return false
	}
}

// opaque reads variable-length opaque data of at most max bytes. The
// result aliases the record; callers that keep it must copy.
func (d *Decoder) Opaque(max uint32) []byte {
	n := d.Uint32()
	if d.Err != nil {
		return nil
	}
	if n > max {
		d.Fail(fmt.Errorf("xdr: opaque of %d bytes exceeds limit %d", n, max))
		return nil
	}
	return d.Fixed(n)
}

// fixed reads n bytes of fixed-length opaque data plus padding.
func (d *Decoder) Fixed(n uint32) []byte {
	padded := uint64(n) + uint64((4-n%4)%4)
	if uint64(len(d.B)) < padded {
		d.Fail(ErrShort)
		return nil
	}
	p := d.B[:n:n]
	d.B = d.B[padded:]
	return p
}

func (d *Decoder) Skip(n int) {
	if len(d.B) < n {
		d.Fail(ErrShort)
		return
	}
	d.B = d.B[n:]
}
