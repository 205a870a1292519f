package nfs41

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
)

// replyClient is a Client whose every COMPOUND is answered with reply, decoded by the very
// decoders the operations use, with no network: for fuzzing them.
func replyClient(reply []byte) *Client {
	c := &Client{cfg: Config{ReaddirBytes: 4096, MaxSlots: 64, RPC: sunrpc.Config{Timeout: time.Second, MaxRecord: 1 << 20}}, retryWait: time.Microsecond}
	c.roundTrip = func(_ context.Context, _ string, _ *sunrpc.Cred, ops []op) error {
		return decodeCompound(matchSequence(reply, ops), ops)
	}
	s := &session{nslots: 64, slots: make(chan *slot, 64), dead: make(chan struct{}), maxRequest: 1 << 20, maxResponse: 1 << 20, maxOperations: maxOps}
	for i := range 64 {
		s.slots <- &slot{id: uint32(i), seq: 1}
	}
	c.sess = s
	return c
}

// matchSequence makes a reply whose first result is a successful SEQUENCE answer for the
// session, slot and sequence ID the call was sent with, so that a reply recorded from a real
// server (testdata/fuzz/FuzzReplies, TestRecordCorpus) reaches the decoders after it.
func matchSequence(reply []byte, ops []op) []byte {
	if len(ops) == 0 || ops[0].code != opSequence {
		return reply
	}
	var e sunrpc.Encoder
	ops[0].args(&e) // session ID, sequence ID, slot ID, ...
	d := sunrpc.Decoder{B: reply}
	d.Uint32()
	d.Opaque(nameMax)
	d.Uint32()
	off := len(reply) - len(d.B)
	if d.Err != nil || len(d.B) < 8+24 || binary.BigEndian.Uint32(d.B) != opSequence || binary.BigEndian.Uint32(d.B[4:]) != 0 {
		return reply
	}
	out := append([]byte(nil), reply...)
	copy(out[off+8:], e.B[:24])
	return out
}

// everyOperation runs each of the client's operations once.
func everyOperation(ctx context.Context, c *Client) []error {
	fh := []byte{1, 2, 3, 4}
	cr := &sunrpc.Cred{UID: 1000, GID: 1000}
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	_, _, err := c.Root(ctx, "/a/b")
	add(err)
	_, err = c.GetAttr(ctx, fh, cr)
	add(err)
	_, _, err = c.Lookup(ctx, fh, "x", cr)
	add(err)
	_, _, err = c.Mkdir(ctx, fh, "d", SetAttr{Mode: 0o755, SetOwner: true, UID: 1}, cr)
	add(err)
	add(c.Symlink(ctx, fh, "l", "t", SetAttr{NoMode: true}, cr))
	_, _, err = c.CreateFile(ctx, fh, "f", SetAttr{Mode: 0o600}, cr)
	add(err)
	add(c.SetAttr(ctx, fh, SetAttr{SetSize: true, Size: 9, SetTimes: true}, cr))
	add(c.RemoveKind(ctx, fh, "x", true, cr))
	add(c.RemoveKind(ctx, fh, "x", false, cr))
	add(c.Rename(ctx, fh, "a", fh, "b", cr))
	_, _, _, err = c.ReadDir(ctx, fh, 0, [8]byte{}, cr)
	add(err)
	_, err = c.Capacity(ctx, fh, cr)
	add(err)
	_, _, err = c.IOSize(ctx, fh, cr)
	add(err)
	_, _, err = c.Read(ctx, fh, make([]byte, 64), 0, cr)
	add(err)
	_, _, err = c.Write(ctx, fh, 0, WriteUnstable, []byte("data"), cr)
	add(err)
	_, err = c.Commit(ctx, fh, cr)
	add(err)
	_, err = c.Readlink(ctx, fh, cr)
	add(err)
	add(c.exchangeID(ctx))
	_, err = c.createSession(ctx)
	add(err)
	return errs
}

// FuzzReplies feeds any bytes to every NFSv4.1 reply decoder: none may panic, allocate beyond
// the record or take a malformed reply for a good one.
func FuzzReplies(f *testing.F) {
	f.Add([]byte{})
	f.Add(words(0, 0, 1, opSequence, 0))
	f.Add(words(StatusBadSession, 0, 1, opSequence, StatusBadSession))
	f.Add(append(words(0, 0, 2, opSequence, 0), append(make([]byte, 36), words(opPutFH, 0)...)...))
	f.Add(words(0, 0, 1, opExchangeID, 0, 0, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, reply []byte) {
		if len(reply) > 1<<16 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		for _, err := range everyOperation(ctx, replyClient(reply)) {
			if err != nil && !errors.Is(err, sunrpc.ErrProtocol) && Status(err) == 0 && ctx.Err() == nil && !errors.Is(err, errReplaced) {
				// Anything but a protocol error, a status or the deadline is a decoder bug.
				t.Fatalf("reply %x: %v", reply, err)
			}
		}
	})
}

func words(ws ...uint32) []byte {
	var b []byte
	for _, w := range ws {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	return b
}

func FuzzFattr(f *testing.F) {
	f.Add(words(1, 1<<attrType, 4, TypeDir))
	f.Add(words(2, 0, 1<<(attrOwner-32), 8, 4, 0x32303030))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &sunrpc.Decoder{B: b}
		a := decodeFattr(d)
		if d.Err == nil && len(a.FH) > fhMax {
			t.Fatalf("handle of %d bytes", len(a.FH))
		}
	})
}
