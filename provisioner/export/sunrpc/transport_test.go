package sunrpc

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc/rpctest"
)

// Fault tests of the RPC transport against a scripted fake server. A panic
// anywhere would crash the test binary.

func TestTransportEcho(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Echo)
	c := clientOf(t, s, 5*time.Second)
	for i := uint32(1); i < 20; i++ {
		mustEcho(t, c, i)
	}
	if n := s.Accepts.Load(); n != 1 {
		t.Errorf("%d connections for sequential calls, want 1", n)
	}
}

// replyThenEcho answers the first call with first(xid), then echoes.
func replyThenEcho(first func(xid uint32) []byte) func(*rpctest.Conn) {
	return func(fc *rpctest.Conn) {
		call, err := fc.ReadCall()
		if err != nil {
			return
		}
		if fc.Send(first(call.XID)) != nil {
			return
		}
		rpctest.Echo(fc)
	}
}

func TestTransportBadReplies(t *testing.T) {
	cases := []struct {
		name  string
		reply func(xid uint32) []byte
		check func(error) bool
	}{
		{"truncated header", func(xid uint32) []byte { return rpctest.Words(xid, msgReply) }, isProtocol},
		{"truncated verifier", func(xid uint32) []byte { return rpctest.Words(xid, msgReply, replyAccepted, authNone, 8, 1) }, isProtocol},
		{"truncated accept_stat", func(xid uint32) []byte { return rpctest.Words(xid, msgReply, replyAccepted, authNone, 0) }, isProtocol},
		{"huge verifier", func(xid uint32) []byte { return rpctest.Words(xid, msgReply, replyAccepted, authNone, 0xffffffff) }, isProtocol},
		{"not a reply", func(xid uint32) []byte { return rpctest.Words(xid, msgCall, 2, 100003, 3, 0) }, isProtocol},
		{"bad reply_stat", func(xid uint32) []byte { return rpctest.Words(xid, msgReply, 7) }, isProtocol},
		{"bad accept_stat", func(xid uint32) []byte { return rpctest.Words(xid, msgReply, replyAccepted, authNone, 0, 99) }, isProtocol},
		{"bad reject_stat", func(xid uint32) []byte { return rpctest.Words(xid, msgReply, replyDenied, 9) }, isProtocol},
		{"truncated RPC_MISMATCH", func(xid uint32) []byte { return rpctest.Words(xid, msgReply, replyDenied, rejectRPCMismatch, 2) }, isProtocol},
		{"RPC_MISMATCH", func(xid uint32) []byte { return rpctest.Words(xid, msgReply, replyDenied, rejectRPCMismatch, 3, 4) },
			rpcErr(func(e *RPCError) bool { return e.Denied && e.Stat == rejectRPCMismatch && e.Low == 3 && e.High == 4 })},
		{"AUTH_ERROR", func(xid uint32) []byte { return rpctest.Words(xid, msgReply, replyDenied, rejectAuthError, 5) },
			rpcErr(func(e *RPCError) bool { return e.Denied && e.Stat == rejectAuthError && e.Auth == 5 })},
		{"PROG_UNAVAIL", func(xid uint32) []byte {
			return rpctest.Words(xid, msgReply, replyAccepted, authNone, 0, acceptProgUnavail)
		},
			rpcErr(func(e *RPCError) bool { return !e.Denied && e.Stat == acceptProgUnavail })},
		{"PROG_MISMATCH", func(xid uint32) []byte {
			return rpctest.Words(xid, msgReply, replyAccepted, authNone, 0, acceptProgMismatch, 2, 2)
		}, rpcErr(func(e *RPCError) bool { return e.Stat == acceptProgMismatch && e.Low == 2 })},
		{"PROC_UNAVAIL", func(xid uint32) []byte {
			return rpctest.Words(xid, msgReply, replyAccepted, authNone, 0, acceptProcUnavail)
		},
			rpcErr(func(e *RPCError) bool { return e.Stat == acceptProcUnavail })},
		{"GARBAGE_ARGS", func(xid uint32) []byte {
			return rpctest.Words(xid, msgReply, replyAccepted, authNone, 0, acceptGarbageArgs)
		},
			rpcErr(func(e *RPCError) bool { return e.Stat == acceptGarbageArgs })},
		{"SYSTEM_ERR", func(xid uint32) []byte {
			return rpctest.Words(xid, msgReply, replyAccepted, authNone, 0, acceptSystemErr)
		},
			rpcErr(func(e *RPCError) bool { return e.Stat == acceptSystemErr })},
		{"garbage after the xid", func(xid uint32) []byte { return append(rpctest.Words(xid), []byte("\xde\xad\xbe\xef garbage!!")...) }, isProtocol},
		{"empty results", func(xid uint32) []byte { return rpctest.Reply(xid) }, isProtocol}, // callProc wants one word
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := rpctest.NewServer(t, replyThenEcho(tc.reply))
			c := clientOf(t, s, 5*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := callProc(ctx, c, 1)
			if err == nil || !tc.check(err) {
				t.Fatalf("got %v (%T)", err, err)
			}
			if errors.Is(err, ErrConnection) {
				t.Fatalf("a well-framed bad reply dropped the connection: %v", err)
			}
			// The stream is intact: the next call works on the same connection.
			mustEcho(t, c, 2)
			if n := s.Accepts.Load(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
		})
	}
}

func isProtocol(err error) bool { return errors.Is(err, ErrProtocol) }

func rpcErr(ok func(*RPCError) bool) func(error) bool {
	return func(err error) bool {
		var re *RPCError
		return errors.As(err, &re) && ok(re) && re.Error() != ""
	}
}

// Garbage framing (a record longer than the limit, a record too short to
// hold an xid) drops the connection: the pending call fails at once, is
// sent once more on a new connection, and fails again while the server
// keeps sending garbage; once it behaves, calls succeed.
func TestTransportGarbageStream(t *testing.T) {
	for name, junk := range map[string][]byte{
		"huge record": {0xff, 0xff, 0xff, 0xff, 1, 2, 3},
		"no xid":      {0x80, 0, 0, 2, 1, 2},
	} {
		t.Run(name, func(t *testing.T) {
			testMisbehaving(t, func(fc *rpctest.Conn) {
				if _, err := fc.ReadCall(); err != nil {
					return
				}
				fc.Write(junk)
				fc.ReadCall() // hold the connection open until the client drops it
			})
		})
	}
}

// testMisbehaving runs a call against a server whose connections all
// misbehave, then lets it behave.
func testMisbehaving(t *testing.T, misbehave func(*rpctest.Conn)) {
	t.Helper()
	var behave atomic.Bool
	s := rpctest.NewServer(t, func(fc *rpctest.Conn) {
		if behave.Load() {
			rpctest.Echo(fc)
			return
		}
		misbehave(fc)
	})
	var ops []string
	c := clientOf(t, s, time.Minute)
	c.observe = func(_, op string, _ time.Duration, err error) { ops = append(ops, Result(err)) }
	start := time.Now()
	_, err := callProc(context.Background(), c, 1)
	if !errors.Is(err, ErrConnection) {
		t.Fatalf("got %v, want ErrConnection", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("failed after %v, want fast", d)
	}
	if n := s.Accepts.Load(); n != 2 || len(ops) != 2 {
		t.Errorf("%d connections, attempts %v: want 2 (one resend on a new connection)", n, ops)
	}
	behave.Store(true)
	mustEcho(t, c, 2)
	if n := s.Accepts.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (redial)", n)
	}
}

// A duplicate reply is discarded and does not disturb later calls.
func TestTransportDuplicateReply(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.AnswerEach(func(call rpctest.Call) []byte {
		// The reply, its duplicate, and a reply to a call never made.
		r := rpctest.Framed(rpctest.Reply(call.XID, call.Proc))
		return append(append(r, r...), rpctest.Framed(rpctest.Reply(call.XID+1000, 7))...)
	}))
	c := clientOf(t, s, 5*time.Second)
	for i := uint32(1); i <= 10; i++ {
		mustEcho(t, c, i)
	}
	if n := s.Accepts.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// Replies in another order than the calls reach the right callers.
func TestTransportOutOfOrder(t *testing.T) {
	const n = 8
	s := rpctest.NewServer(t, func(fc *rpctest.Conn) {
		var calls []rpctest.Call
		for len(calls) < n {
			call, err := fc.ReadCall()
			if err != nil {
				return
			}
			calls = append(calls, call)
		}
		for i := len(calls) - 1; i >= 0; i-- {
			if fc.Send(rpctest.Reply(calls[i].XID, calls[i].Proc)) != nil {
				return
			}
		}
		rpctest.Echo(fc)
	})
	c := clientOf(t, s, 5*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := uint32(1); i <= n; i++ {
		wg.Add(1)
		go func(proc uint32) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, err := callProc(ctx, c, proc)
			if err == nil && got != proc {
				err = errors.New("wrong reply")
			}
			errs <- err
		}(i + 100)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// The server closes the connection halfway through a reply: the call fails
// at once with ErrConnection (after one resend) and the next call redials.
func TestTransportCloseMidReply(t *testing.T) {
	testMisbehaving(t, func(fc *rpctest.Conn) {
		call, err := fc.ReadCall()
		if err != nil {
			return
		}
		r := rpctest.Reply(call.XID, 1, 2, 3, 4)
		framed := append(rpctest.Words(uint32(len(r))|LastFragment), r...)
		fc.Write(framed[:len(framed)/2])
		fc.Close()
	})
}

// A call that the connection loses is sent again on a new one: a server
// that closes an idle connection (or restarts) costs no failed call.
func TestTransportResendAfterIdleClose(t *testing.T) {
	var first atomic.Bool
	first.Store(true)
	s := rpctest.NewServer(t, func(fc *rpctest.Conn) {
		if first.Swap(false) {
			fc.ReadCall() // the call is read, then the connection is dropped
			return
		}
		rpctest.Echo(fc)
	})
	c := clientOf(t, s, time.Minute)
	mustEcho(t, c, 1)
	if n := s.Accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// Calls pending on a connection that the server resets all fail fast.
func TestTransportPendingFailFast(t *testing.T) {
	const n = 5
	got := make(chan struct{}, n)
	release := make(chan struct{})
	s := rpctest.NewServer(t, func(fc *rpctest.Conn) {
		for i := 0; i < n; i++ {
			if _, err := fc.ReadCall(); err != nil {
				return
			}
			got <- struct{}{}
		}
		<-release
	})
	c := clientOf(t, s, time.Minute)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := callProc(context.Background(), c, 1)
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		<-got
	}
	start := time.Now()
	close(release) // the handler returns and closes the connection
	for i := 0; i < n; i++ {
		if err := <-errs; !errors.Is(err, ErrConnection) {
			t.Errorf("got %v, want ErrConnection", err)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("pending calls failed after %v", d)
	}
}

// The wedge of the library's transport: a reply slower than the timeout,
// then a duplicate of it, must not disturb the connection. Here other
// traffic keeps the connection alive, so it is not dropped as stalled: the
// late replies reach it, are discarded, and the next call on the same
// connection succeeds.
func TestTransportLateAndDuplicateReply(t *testing.T) {
	lateCall := make(chan rpctest.Call, 1)
	sendLate := make(chan struct{})
	s := rpctest.NewServer(t, func(fc *rpctest.Conn) {
		for {
			call, err := fc.ReadCall()
			if err != nil {
				return
			}
			switch call.Proc {
			case 1: // the slow one: answered later
				lateCall <- call
			case 2: // traffic while the slow call waits
				fc.Send(rpctest.Reply(call.XID, 2))
			case 3: // the test says: now answer the slow call, twice
				<-sendLate
				late := <-lateCall
				fc.Send(rpctest.Reply(late.XID, 1))
				fc.Send(rpctest.Reply(late.XID, 1))
				fc.Send(rpctest.Reply(call.XID, 3))
			default:
				fc.Send(rpctest.Reply(call.XID, call.Proc))
			}
		}
	})
	c := clientOf(t, s, 5*time.Second)
	slowDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := callProc(ctx, c, 1)
		slowDone <- err
	}()
	// Keep data flowing until the slow call has timed out.
	var slowErr error
loop:
	for {
		select {
		case slowErr = <-slowDone:
			break loop
		default:
			mustEcho(t, c, 2)
		}
	}
	if !errors.Is(slowErr, context.DeadlineExceeded) {
		t.Fatalf("slow call: got %v, want DeadlineExceeded", slowErr)
	}
	close(sendLate)
	mustEcho(t, c, 3) // its reply comes after the late reply and its duplicate
	for i := uint32(10); i < 20; i++ {
		mustEcho(t, c, i)
	}
	if n := s.Accepts.Load(); n != 1 {
		t.Errorf("%d connections, want 1: a live connection was dropped", n)
	}
}

// A server that accepts and never answers: the call fails within its
// deadline, the connection is dropped as stalled and the next call
// redials. Late replies to the old connection cannot reach the new one.
func TestTransportStalledServer(t *testing.T) {
	var calls atomic32
	s := rpctest.NewServer(t, func(fc *rpctest.Conn) {
		if calls.add() == 1 {
			call, err := fc.ReadCall()
			if err != nil {
				return
			}
			fc.ReadCall() // blocks until the client drops the connection
			fc.Send(rpctest.Reply(call.XID, 1))
			return
		}
		rpctest.Echo(fc)
	})
	c := clientOf(t, s, time.Minute)
	const deadline = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	_, err := callProc(ctx, c, 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > deadline+2*time.Second {
		t.Errorf("call returned after %v, deadline %v", d, deadline)
	}
	mustEcho(t, c, 2)
	if n := s.Accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (the stalled one dropped)", n)
	}
}

// A server that trickles empty, non-final fragments forever keeps bytes
// arriving but never completes a reply: that is no progress. The call
// times out, the connection is dropped and the next call redials.
func TestTransportTricklingServer(t *testing.T) {
	var calls atomic32
	s := rpctest.NewServer(t, func(fc *rpctest.Conn) {
		if calls.add() == 1 {
			if _, err := fc.ReadCall(); err != nil {
				return
			}
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for range tick.C {
				if _, err := fc.Write(rpctest.Words(0)); err != nil { // a 0-byte fragment, not the last
					return
				}
			}
		}
		rpctest.Echo(fc)
	})
	c := clientOf(t, s, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := callProc(ctx, c, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	mustEcho(t, c, 2)
	if n := s.Accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the trickling one must be dropped", n)
	}
}

// The client's own timeout bounds a call whose context has no deadline.
func TestTransportDefaultTimeout(t *testing.T) {
	s := rpctest.NewServer(t, func(fc *rpctest.Conn) {
		for {
			if _, err := fc.ReadCall(); err != nil {
				return
			}
		}
	})
	c := clientOf(t, s, 150*time.Millisecond)
	start := time.Now()
	_, err := callProc(context.Background(), c, 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %v", d)
	}
}

// Fragmented replies (several record fragments) are reassembled.
func TestTransportFragments(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.AnswerEach(func(call rpctest.Call) []byte {
		r := rpctest.Reply(call.XID, call.Proc)
		var out []byte
		for i := 0; i < len(r); i += 4 {
			hdr := uint32(4)
			if i+4 >= len(r) {
				hdr |= LastFragment
			}
			out = append(out, rpctest.Words(hdr)...)
			out = append(out, r[i:i+4]...)
		}
		return out
	}))
	c := clientOf(t, s, 5*time.Second)
	mustEcho(t, c, 5)
}

// Dial failures are connection errors and the next call dials again.
func TestTransportDialFailure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	c := NewClient("gone", func(ctx context.Context) (net.Conn, error) {
		return DialTCP(ctx, "127.0.0.1", port, SourcePortAny)
	}, Config{Timeout: time.Second, MachineName: "test", MaxRecord: 1 << 20})
	defer c.Close()
	_, err = callProc(context.Background(), c, 1)
	if !errors.Is(err, ErrConnection) {
		t.Fatalf("got %v, want ErrConnection", err)
	}
	if Result(err) != "connection" {
		t.Errorf("Result = %q", Result(err))
	}
}

// Closing the client fails later calls and stops every reader goroutine.
func TestTransportClose(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Echo)
	c := clientOf(t, s, 5*time.Second)
	mustEcho(t, c, 1)
	c.mu.Lock()
	cc := c.cur
	c.mu.Unlock()
	c.Close()
	select {
	case <-cc.done:
	case <-time.After(5 * time.Second):
		t.Fatal("reader goroutine still running after close")
	}
	if _, err := callProc(context.Background(), c, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: got %v, want ErrClosed", err)
	}
}

type atomic32 struct {
	mu sync.Mutex
	n  int
}

func (a *atomic32) add() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	return a.n
}

// A call whose deadline has passed before it is sent fails without
// touching the connection.
func TestTransportExpiredContext(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Echo)
	c := clientOf(t, s, 5*time.Second)
	mustEcho(t, c, 1)
	ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	if _, err := callProc(ctx, c, 2); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrConnection) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	mustEcho(t, c, 3)
	if n := s.Accepts.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}
