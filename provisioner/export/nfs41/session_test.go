package nfs41

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc/rpctest"
)

// fakeServer is an NFSv4.1 server of sessions and one operation that changes something
// (MKDIR: SEQUENCE, PUTFH, CREATE, GETFH, GETATTR), with a per-slot reply cache as RFC 8881
// asks, and hooks that lose replies, restart the server and answer errors.
type fakeServer struct {
	t  *testing.T
	mu sync.Mutex

	clients  map[uint64]uint32 // client ID: next CREATE_SESSION sequence
	sessions map[[16]byte]map[uint32]*fakeSlot
	nextID   uint64
	made     map[string]bool // directories made
	lease    uint32

	executed      map[string]int // MKDIRs executed, by name
	calls         map[string]int // COMPOUNDs by tag
	misordered    int
	slotsGranted  uint32
	destroyed     []string
	renewals      int
	onMkdir       func(name string, attempt int) fakeAction // nil: answer
	seqStatusOnce uint32                                    // answer the next SEQUENCE with this
	opStatusOnce  uint32                                    // answer the next MKDIR's CREATE with this
}

type fakeSlot struct {
	seq   uint32
	reply []byte // results after the RPC header of the last request, when cached
}

type fakeAction int

const (
	answer            fakeAction = iota
	dropAfterDoing               // execute, then close the connection without a reply
	restartAfterDoing            // execute, forget every client and session, close the connection
	noReply                      // execute, and never answer (a stalled server)
)

func newFakeServer(t *testing.T) (*fakeServer, *rpctest.Server) {
	f := &fakeServer{t: t, clients: map[uint64]uint32{}, sessions: map[[16]byte]map[uint32]*fakeSlot{}, made: map[string]bool{},
		executed: map[string]int{}, calls: map[string]int{}, lease: 5, slotsGranted: 4}
	srv := rpctest.NewServer(t, func(c *rpctest.Conn) {
		for {
			call, err := c.ReadCall()
			if err != nil {
				return
			}
			res, action := f.handle(call)
			if action == noReply {
				continue
			}
			if action != answer {
				return // the connection closes with no reply
			}
			if c.Send(append(rpctest.Reply(call.XID), res...)) != nil {
				return
			}
		}
	})
	return f, srv
}

func (f *fakeServer) client(t *testing.T, srv *rpctest.Server) *Client {
	t.Helper()
	return f.clientWithTimeout(t, srv, 5*time.Second)
}

func (f *fakeServer) clientWithTimeout(t *testing.T, srv *rpctest.Server, timeout time.Duration) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, Config{Server: "127.0.0.1", RPC: sunrpc.Config{Timeout: timeout, MachineName: "test", MaxRecord: 1 << 20},
		Dial: func(ctx context.Context) (net.Conn, error) {
			return sunrpc.DialTCP(ctx, "127.0.0.1", srv.Port(), sunrpc.SourcePortAny)
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func result(ws ...uint32) *sunrpc.Encoder {
	e := &sunrpc.Encoder{}
	for _, w := range ws {
		e.Uint32(w)
	}
	return e
}

// compoundRes is COMPOUND4res of results (each op code, status and body already encoded).
func compoundRes(status uint32, n int, body []byte) []byte {
	e := result(status)
	e.String("")
	e.Uint32(uint32(n))
	return append(e.B, body...)
}

func (f *fakeServer) handle(call rpctest.Call) ([]byte, fakeAction) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if call.Proc == 0 {
		return nil, answer
	}
	d := &sunrpc.Decoder{B: call.Args}
	tag := string(d.Opaque(nameMax))
	d.Uint32() // minor version
	d.Uint32() // ops
	code := d.Uint32()
	f.calls[tag]++
	switch code {
	case opExchangeID:
		f.nextID++
		f.clients[f.nextID] = 1
		e := result(opExchangeID, 0)
		e.Uint64(f.nextID)
		e.Uint32(1) // sequence
		e.Uint32(0) // flags
		e.Uint32(0) // SP4_NONE
		e.Uint64(0)
		e.String("fake")
		e.String("fake")
		e.Uint32(0)
		return compoundRes(0, 1, e.B), answer
	case opCreateSession:
		id := d.Uint64()
		if _, ok := f.clients[id]; !ok {
			return compoundRes(StatusStaleClientID, 1, result(opCreateSession, StatusStaleClientID).B), answer
		}
		f.nextID++
		var sid [16]byte
		copy(sid[:], fmt.Sprintf("session%9d", f.nextID))
		slots := map[uint32]*fakeSlot{}
		for i := uint32(0); i < f.slotsGranted; i++ {
			slots[i] = &fakeSlot{}
		}
		f.sessions[sid] = slots
		e := result(opCreateSession, 0)
		e.Fixed(sid[:])
		e.Uint32(1)
		e.Uint32(0)
		channelAttrs(e, 1<<20, 1<<20, 16<<10, 16, f.slotsGranted)
		channelAttrs(e, 4096, 4096, 0, 2, 1)
		return compoundRes(0, 1, e.B), answer
	case opDestroySession, opDestroyClient:
		f.destroyed = append(f.destroyed, opName(code))
		return compoundRes(0, 1, result(code, 0).B), answer
	case opSequence:
	default:
		f.t.Errorf("COMPOUND %s begins with %s", tag, opName(code))
		return compoundRes(StatusOpNotInSession, 1, result(code, StatusOpNotInSession).B), answer
	}
	var sid [16]byte
	copy(sid[:], d.Fixed(16))
	seq, slotID := d.Uint32(), d.Uint32()
	d.Uint32()
	cachethis := d.Bool()
	fail := func(st uint32) ([]byte, fakeAction) {
		return compoundRes(st, 1, result(opSequence, st).B), answer
	}
	slots, ok := f.sessions[sid]
	if st := f.seqStatusOnce; st != 0 {
		f.seqStatusOnce = 0
		if sl := slots[slotID]; st == StatusRetryUncached && sl != nil {
			sl.seq, sl.reply = seq, nil // as a server that did the first attempt and kept no reply
		}
		return fail(st)
	}
	if !ok {
		return fail(StatusBadSession)
	}
	sl, ok := slots[slotID]
	switch {
	case !ok:
		return fail(StatusBadSlot)
	case seq == sl.seq && sl.reply != nil:
		return sl.reply, answer // the reply cache
	case seq == sl.seq:
		return fail(StatusRetryUncached)
	case seq != sl.seq+1:
		f.misordered++
		return fail(StatusSeqMisordered)
	}
	sl.seq, sl.reply = seq, nil
	if tag == "SEQUENCE" {
		f.renewals++
	}
	seqRes := result(opSequence, 0)
	seqRes.Fixed(sid[:])
	seqRes.Uint32(seq)
	seqRes.Uint32(slotID)
	seqRes.Uint32(f.slotsGranted - 1)
	seqRes.Uint32(f.slotsGranted - 1)
	seqRes.Uint32(0)
	body, n, status := seqRes.B, 1, uint32(0)
	action := answer
	switch tag {
	case "lease":
		e := result(opPutRootFH, 0, opGetattr, 0)
		bits(attrLeaseTime).encode(e)
		e.Opaque(result(f.lease).B)
		body, n = append(body, e.B...), 3
	case "MKDIR":
		d.Uint32() // PUTFH
		d.Opaque(fhMax)
		d.Uint32() // CREATE
		d.Uint32() // type
		name := string(d.Opaque(nameMax))
		attempt := f.executed[name]
		st := uint32(0)
		switch {
		case f.opStatusOnce != 0:
			st, f.opStatusOnce = f.opStatusOnce, 0
		case f.made[name]:
			st = StatusExist
		}
		e := result(opPutFH, 0, opCreate, st)
		n, status = 3, st
		if st == 0 {
			f.made[name] = true
			f.executed[name]++
			skip := result(0, 0, 0, 0, 0)
			e.B = append(e.B, skip.B...) // change_info4
			e.Uint32(0)                  // attrset
			e.Uint32(opGetFH)
			e.Uint32(0)
			e.Opaque([]byte(name))
			e.Uint32(opGetattr)
			e.Uint32(0)
			bits(attrType).encode(e)
			e.Opaque(result(TypeDir).B)
			n = 5
			if f.onMkdir != nil {
				action = f.onMkdir(name, attempt)
			}
		}
		body = append(body, e.B...)
	case "RECLAIM_COMPLETE":
		body, n = append(body, result(opReclaimDone, 0).B...), 2
	case "SEQUENCE":
	default:
		f.t.Errorf("unexpected COMPOUND %s", tag)
	}
	res := compoundRes(status, n, body)
	if cachethis {
		sl.reply = res
	}
	if action == restartAfterDoing {
		f.clients = map[uint64]uint32{}
		f.sessions = map[[16]byte]map[uint32]*fakeSlot{}
	}
	return res, action
}

func mkdir(c *Client, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := c.Mkdir(ctx, []byte("root"), name, SetAttr{Mode: 0o755}, &sunrpc.RootCred)
	return err
}

func TestSessionEstablished(t *testing.T) {
	f, srv := newFakeServer(t)
	c := f.client(t, srv)
	if err := mkdir(c, "a"); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	calls := fmt.Sprint(f.calls)
	f.mu.Unlock()
	if want := "map[CREATE_SESSION:1 EXCHANGE_ID:1 MKDIR:1 RECLAIM_COMPLETE:1 lease:1]"; calls != want {
		t.Errorf("COMPOUNDs %s, want %s", calls, want)
	}
	c.Close()
	if got := fmt.Sprint(f.destroyed); got != "[DESTROY_SESSION DESTROY_CLIENTID]" {
		t.Errorf("on Close: %s, want DESTROY_SESSION and DESTROY_CLIENTID", got)
	}
}

// Many COMPOUNDs at once use the slots the server granted, each slot's sequence IDs in order.
func TestSessionSlotsConcurrent(t *testing.T) {
	f, srv := newFakeServer(t)
	c := f.client(t, srv)
	if c.sess.nslots != int(f.slotsGranted) {
		t.Errorf("%d slots, the server granted %d", c.sess.nslots, f.slotsGranted)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- mkdir(c, fmt.Sprintf("d%d", i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.misordered != 0 || len(f.made) != 40 {
		t.Errorf("%d misordered sequence IDs, %d directories made (want 0, 40)", f.misordered, len(f.made))
	}
}

// A reply lost with its connection: the transport resends on the same slot and sequence ID,
// and the reply cache answers: executed once, and not reported as maybe done.
func TestSessionReplyCacheMakesResendExactlyOnce(t *testing.T) {
	f, srv := newFakeServer(t)
	c := f.client(t, srv)
	f.onMkdir = func(_ string, attempt int) fakeAction {
		if attempt == 0 {
			return dropAfterDoing
		}
		return answer
	}
	err := mkdir(c, "once")
	if err != nil {
		t.Fatalf("MKDIR whose reply was lost: %v (the resend should be answered from the reply cache)", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.executed["once"] != 1 || srv.Accepts.Load() != 2 {
		t.Errorf("executed %d times over %d connections, want once over 2", f.executed["once"], srv.Accepts.Load())
	}
}

// The server restarts after doing a MKDIR whose reply is lost: the resend finds the session
// gone, the client makes a client ID and a session again and resends; what it meets then is
// reported as maybe done, as on NFSv3.
func TestSessionServerRestart(t *testing.T) {
	f, srv := newFakeServer(t)
	c := f.client(t, srv)
	f.onMkdir = func(name string, attempt int) fakeAction {
		if name == "r" && attempt == 0 {
			return restartAfterDoing
		}
		return answer
	}
	err := mkdir(c, "r")
	if Status(err) != StatusExist || !errors.Is(err, export.ErrMaybeDone) {
		t.Fatalf("MKDIR across a restart: %v; want NFS4ERR_EXIST marked as maybe done", err)
	}
	f.mu.Lock()
	exchanges, sessions := f.calls["EXCHANGE_ID"], f.calls["CREATE_SESSION"]
	f.mu.Unlock()
	if exchanges != 2 || sessions != 3 { // the first session, a refused one, the new one
		t.Errorf("%d EXCHANGE_IDs and %d CREATE_SESSIONs, want 2 and 3", exchanges, sessions)
	}
	if err := mkdir(c, "after"); err != nil {
		t.Errorf("MKDIR on the new session: %v", err)
	}
}

// Calls that get no answer retire their slots; when half are gone the session is replaced, and
// calls go on on the new one.
func TestSessionStalledSlotsReplaced(t *testing.T) {
	f, srv := newFakeServer(t)
	c := f.clientWithTimeout(t, srv, 300*time.Millisecond)
	f.onMkdir = func(name string, _ int) fakeAction {
		if strings.HasPrefix(name, "stalled") {
			return noReply
		}
		return answer
	}
	for i := range 2 { // half of the 4 slots
		if err := mkdir(c, fmt.Sprintf("stalled%d", i)); err == nil {
			t.Fatal("a MKDIR that got no answer succeeded")
		}
	}
	if err := mkdir(c, "after"); err != nil {
		t.Fatalf("MKDIR after half the slots were retired: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls["CREATE_SESSION"] != 2 {
		t.Errorf("%d CREATE_SESSIONs, want 2 (the session replaced once)", f.calls["CREATE_SESSION"])
	}
}

// sequenceFails answers the SEQUENCE of a MKDIR of name with st once, and checks the MKDIR
// succeeds all the same.
func sequenceFails(t *testing.T, st uint32, name string) (*fakeServer, *Client) {
	t.Helper()
	f, srv := newFakeServer(t)
	c := f.client(t, srv)
	f.mu.Lock()
	f.seqStatusOnce = st
	f.mu.Unlock()
	if err := mkdir(c, name); err != nil {
		t.Fatalf("MKDIR after %s on SEQUENCE: %v", StatusName(st), err)
	}
	return f, c
}

// BADSESSION and DEADSESSION to a first attempt: nothing was done, so the resend on a new
// session is not maybe done.
func TestSessionBadSession(t *testing.T) {
	for _, st := range []uint32{StatusBadSession, StatusDeadSession} {
		t.Run(StatusName(st), func(t *testing.T) {
			f, _ := sequenceFails(t, st, "b")
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.calls["CREATE_SESSION"] != 2 || f.calls["EXCHANGE_ID"] != 1 {
				t.Errorf("%d CREATE_SESSIONs, %d EXCHANGE_IDs; want 2 and 1", f.calls["CREATE_SESSION"], f.calls["EXCHANGE_ID"])
			}
		})
	}
}

// NFS4ERR_DELAY on SEQUENCE (the first attempt still running on the slot) retires the slot;
// RETRY_UNCACHED_REP (the first attempt done, its reply not kept) goes on on the next sequence ID
// and says the call may have been done. Either way no sequence ID is reused.
func TestSessionSequenceDelayAndUncached(t *testing.T) {
	for _, st := range []uint32{StatusDelay, StatusRetryUncached} {
		t.Run(StatusName(st), func(t *testing.T) {
			f, c := sequenceFails(t, st, "first")
			for i := range 12 { // every slot, more than once
				if err := mkdir(c, fmt.Sprintf("next%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.misordered != 0 {
				t.Errorf("%d misordered sequence IDs after %s", f.misordered, StatusName(st))
			}
		})
	}
}

// GRACE and DELAY are waited out.
func TestSessionGraceAndDelay(t *testing.T) {
	for _, st := range []uint32{StatusGrace, StatusDelay} {
		t.Run(StatusName(st), func(t *testing.T) {
			f, srv := newFakeServer(t)
			c := f.client(t, srv)
			f.mu.Lock()
			f.opStatusOnce = st
			f.mu.Unlock()
			err := mkdir(c, "g")
			if err != nil {
				t.Fatalf("MKDIR after %s: %v", StatusName(st), err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.calls["MKDIR"] != 2 || f.executed["g"] != 1 {
				t.Errorf("%d MKDIRs sent, %d executed; want 2 and 1", f.calls["MKDIR"], f.executed["g"])
			}
		})
	}
}

// While idle the lease is renewed with lone SEQUENCEs.
func TestSessionLeaseRenewed(t *testing.T) {
	f, srv := newFakeServer(t)
	f.client(t, srv)
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 15*time.Second, true, func(context.Context) (bool, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.renewals >= 2, nil
	})
	if err != nil {
		t.Fatalf("fewer than 2 renewals in 15 s with a 5 s lease: %v", err)
	}
}
