package wire

import (
	"bufio"
	"context"
	"encoding/binary"

	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer is a scriptable RPC server: each accepted connection is
// handed to handle, which reads calls and writes whatever replies (or
// garbage) the test wants.
type fakeServer struct {
	l       net.Listener
	accepts atomic.Int32
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func newFakeServer(t *testing.T, handle func(fc *fakeConn)) *fakeServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{l: l}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, nc)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer nc.Close()
				handle(&fakeConn{Conn: nc, r: bufio.NewReader(nc)})
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

func (s *fakeServer) port() int { return s.l.Addr().(*net.TCPAddr).Port }

// client returns a client of the fake server with the given call timeout.
func (s *fakeServer) client(t *testing.T, timeout time.Duration) *client {
	t.Helper()
	o := Options{Timeout: timeout}.withDefaults()
	port := s.port()
	c := newClient("fake", func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}, &o)
	t.Cleanup(c.close)
	return c
}

type fakeConn struct {
	net.Conn
	r *bufio.Reader
}

type fakeCall struct {
	xid, prog, vers, proc uint32
	args                  []byte
}

// readCall reads one call record.
func (c *fakeConn) readCall() (fakeCall, error) {
	rec, err := readRecord(c.r, 1<<20)
	if err != nil {
		return fakeCall{}, err
	}
	d := decoder{b: rec}
	var fc fakeCall
	fc.xid = d.uint32()
	d.uint32() // CALL
	d.uint32() // rpcvers
	fc.prog, fc.vers, fc.proc = d.uint32(), d.uint32(), d.uint32()
	d.uint32()
	d.opaque(maxAuthBytes)
	d.uint32()
	d.opaque(maxAuthBytes)
	fc.args = d.b
	return fc, d.err
}

// send writes rec as one record.
func (c *fakeConn) send(rec []byte) error {
	_, err := c.Write(framed(rec))
	return err
}

// framed is rec as one last fragment: what send writes.
func framed(rec []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(rec))|lastFragment), rec...)
}

// reply builds an accepted, successful reply carrying results.
func reply(xid uint32, results ...uint32) []byte {
	e := encoder{}
	e.uint32(xid)
	e.uint32(msgReply)
	e.uint32(replyAccepted)
	e.uint32(authNone)
	e.uint32(0)
	e.uint32(acceptSuccess)
	for _, r := range results {
		e.uint32(r)
	}
	return e.b
}

func words(ws ...uint32) []byte {
	e := encoder{}
	for _, w := range ws {
		e.uint32(w)
	}
	return e.b
}

// answerEach answers every call with the bytes answer returns for it (whole records, or any
// framing the test wants), until the client or the server goes.
func answerEach(answer func(call fakeCall) []byte) func(*fakeConn) {
	return func(fc *fakeConn) {
		for {
			call, err := fc.readCall()
			if err != nil {
				return
			}
			if _, err := fc.Write(answer(call)); err != nil {
				return
			}
		}
	}
}

// echo answers every call with its proc number as the only result.
func echo(fc *fakeConn) {
	answerEach(func(call fakeCall) []byte { return framed(reply(call.xid, call.proc)) })(fc)
}

// callProc makes a call of procedure proc (any program) and returns the
// first result word.
func callProc(ctx context.Context, c *client, proc uint32) (uint32, error) {
	p := procedure{prog: 100003, vers: 3, proc: proc, name: "TEST"}
	var v uint32
	err := c.call(ctx, p, &rootCred, nil, func(res []byte) error {
		d := decoder{b: res}
		v = d.uint32()
		return decodeErr(&d, "TEST")
	})
	return v, err
}

func mustEcho(t *testing.T, c *client, proc uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := callProc(ctx, c, proc)
	if err != nil {
		t.Fatalf("call %d: %v", proc, err)
	}
	if got != proc {
		t.Fatalf("call %d answered %d", proc, got)
	}
}
