// Package rpctest is a scriptable ONC RPC server over TCP for tests of RPC clients: each
// accepted connection is handed to a function that reads calls and writes whatever replies (or
// garbage) the test wants. It depends on nothing but the standard library, so that the
// transport's own tests can use it.
package rpctest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Server accepts connections on 127.0.0.1 until the test ends.
type Server struct {
	Accepts atomic.Int32 // connections accepted so far

	l     net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

// NewServer listens on a free port of 127.0.0.1 and runs handle for each connection, which is
// closed when handle returns and when the test ends.
func NewServer(t testing.TB, handle func(*Conn)) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{l: l}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			s.Accepts.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, nc)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer nc.Close()
				handle(&Conn{Conn: nc, r: bufio.NewReader(nc)})
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// Port is the port the server listens on.
func (s *Server) Port() int { return s.l.Addr().(*net.TCPAddr).Port }

// Conn is one accepted connection.
type Conn struct {
	net.Conn
	r *bufio.Reader
}

// Call is one call read from a connection.
type Call struct {
	XID, Prog, Vers, Proc uint32
	UID                   uint32 // AUTH_SYS uid; 0 for AUTH_NONE
	Args                  []byte
}

var errShort = errors.New("rpctest: call truncated")

// ReadCall reads one call record (of up to 1 MiB, in any number of fragments).
func (c *Conn) ReadCall() (Call, error) {
	var rec []byte
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
			return Call{}, err
		}
		h := binary.BigEndian.Uint32(hdr[:])
		n := int(h &^ (1 << 31))
		if len(rec)+n > 1<<20 {
			return Call{}, errors.New("rpctest: call record too big")
		}
		start := len(rec)
		rec = append(rec, make([]byte, n)...)
		if _, err := io.ReadFull(c.r, rec[start:]); err != nil {
			return Call{}, err
		}
		if h&(1<<31) != 0 {
			break
		}
	}
	w := func(i int) uint32 { return binary.BigEndian.Uint32(rec[4*i:]) }
	if len(rec) < 8*4 {
		return Call{}, errShort
	}
	call := Call{XID: w(0), Prog: w(3), Vers: w(4), Proc: w(5)}
	off := 6 * 4
	for i := range 2 { // credential, verifier
		if len(rec) < off+8 {
			return Call{}, errShort
		}
		flavor, n := binary.BigEndian.Uint32(rec[off:]), int(binary.BigEndian.Uint32(rec[off+4:]))
		body := off + 8
		off = body + (n+3)&^3
		if n > 400 || len(rec) < off {
			return Call{}, errShort
		}
		if i == 0 && flavor == 1 && n >= 8 { // AUTH_SYS: stamp, machine name, uid
			m := int(binary.BigEndian.Uint32(rec[body+4:]))
			if u := body + 8 + (m+3)&^3; m <= 255 && u+4 <= off {
				call.UID = binary.BigEndian.Uint32(rec[u:])
			}
		}
	}
	call.Args = rec[off:]
	return call, nil
}

// Send writes rec as one record.
func (c *Conn) Send(rec []byte) error {
	_, err := c.Write(Framed(rec))
	return err
}

// Framed is rec as one last fragment: what Send writes.
func Framed(rec []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(rec))|1<<31), rec...)
}

// Reply is an accepted, successful reply header for xid followed by results.
func Reply(xid uint32, results ...uint32) []byte {
	return Words(append([]uint32{xid, 1 /* REPLY */, 0 /* MSG_ACCEPTED */, 0, 0 /* AUTH_NONE verifier */, 0 /* SUCCESS */}, results...)...)
}

// Words is ws in XDR.
func Words(ws ...uint32) []byte {
	var b []byte
	for _, w := range ws {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	return b
}

// AnswerEach answers every call with the bytes answer returns for it (whole records, or any
// framing the test wants), until the client or the server goes.
func AnswerEach(answer func(Call) []byte) func(*Conn) {
	return func(c *Conn) {
		for {
			call, err := c.ReadCall()
			if err != nil {
				return
			}
			if _, err := c.Write(answer(call)); err != nil {
				return
			}
		}
	}
}

// Echo answers every call with its procedure number as the only result.
func Echo(c *Conn) {
	AnswerEach(func(call Call) []byte { return Framed(Reply(call.XID, call.Proc)) })(c)
}
