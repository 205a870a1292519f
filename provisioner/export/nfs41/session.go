package nfs41

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
)

// Config is how a Client reaches its server and calls it.
type Config struct {
	Server string                                  // host, for errors and the Observer
	Dial   func(context.Context) (net.Conn, error) // to the server's NFS port (2049)
	RPC    sunrpc.Config
	// OwnerDomain, when set, is appended to the numeric owner strings sent ("2000@domain").
	OwnerDomain string
	// ReaddirBytes is the maxcount of READDIR; 0 means 32 KiB.
	ReaddirBytes uint32
	// MaxSlots caps the fore channel's slots (concurrent COMPOUNDs); the server's answer to
	// CREATE_SESSION may lower it. 0 means 64.
	MaxSlots int
}

// Client is one NFSv4.1 client of one server: its client ID (EXCHANGE_ID), its session
// (CREATE_SESSION) with a slot table, and the lease kept alive while idle. Every COMPOUND it
// sends begins with SEQUENCE; sessions and client IDs the server lost are made again.
type Client struct {
	cfg       Config
	rpc       *sunrpc.Client
	roundTrip func(ctx context.Context, name string, cr *sunrpc.Cred, ops []op) error // call, or a test's
	retryWait time.Duration                                                           // first wait after DELAY or GRACE
	ownerID   []byte
	verifier  [8]byte

	recoverMu sync.Mutex // one recovery at a time; guards the fields below it while recovering
	mu        sync.Mutex // guards clientID, createSeq, sess
	clientID  uint64
	createSeq uint32 // csa_sequence of the next CREATE_SESSION
	sess      *session

	reclaimPending atomic.Bool // a new client ID's RECLAIM_COMPLETE is still to be sent
	lease          time.Duration
	lastCall       atomic.Int64 // unix nanoseconds of the last COMPOUND answered
	stop           chan struct{}
	done           chan struct{}
}

// session is one session's ID and slot table. A slot that got no reply is retired (the server
// may or may not have taken its sequence ID); when half are retired the session is replaced.
type session struct {
	id            [16]byte
	slots         chan *slot
	nslots        int
	retired       atomic.Int32
	broken        atomic.Bool   // half the slots are retired: replace before use
	dead          chan struct{} // closed when replaced
	maxRequest    uint32
	maxResponse   uint32
	maxOperations uint32
}

type slot struct{ id, seq uint32 }

var errReplaced = errors.New("session replaced")

// Dial makes a client of the server: EXCHANGE_ID, CREATE_SESSION, RECLAIM_COMPLETE and a
// GETATTR of the lease time. Close ends it.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.ReaddirBytes == 0 {
		cfg.ReaddirBytes = 32 << 10
	}
	if cfg.MaxSlots <= 0 {
		cfg.MaxSlots = 64
	}
	c := &Client{cfg: cfg, rpc: sunrpc.NewClient(cfg.Server, cfg.Dial, cfg.RPC), stop: make(chan struct{}), done: make(chan struct{})}
	c.roundTrip, c.retryWait = c.call, 20*time.Millisecond
	// The owner ID names this client instance: a fixed one would let two Clients of one
	// process (two exports of one server) take each other's client ID.
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	_, _ = rand.Read(c.verifier[:])
	c.ownerID = fmt.Appendf(nil, "nfs-subdir-provisioner/%s/%x", cfg.RPC.MachineName, nonce)
	if err := c.establish(ctx, nil); err != nil {
		c.rpc.Close()
		return nil, err
	}
	var a Attr
	err := c.compound(ctx, "lease", &sunrpc.RootCred, false, op{code: opPutRootFH}, getattr(bits(attrLeaseTime), &a))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("lease time of %s: %w", cfg.Server, err)
	}
	c.lease = time.Duration(max(a.LeaseTime, 5)) * time.Second
	go c.keepAlive()
	return c, nil
}

// establish makes a new session, replacing old (nil at first): CREATE_SESSION on the client ID,
// preceded by EXCHANGE_ID when there is none or the server forgot it; RECLAIM_COMPLETE follows
// on the first session of a client ID (this client reclaims nothing).
func (c *Client) establish(ctx context.Context, old *session) error {
	reclaim, err := c.replaceSession(ctx, old)
	if err != nil {
		return err
	}
	if reclaim {
		c.reclaimPending.Store(true)
	}
	return c.reclaim(ctx)
}

// reclaim sends the RECLAIM_COMPLETE a new client ID still owes (until it is sent, a server in
// its grace period refuses new state), and again before the next call when it failed.
func (c *Client) reclaim(ctx context.Context) error {
	if !c.reclaimPending.Load() {
		return nil
	}
	err := c.compound(ctx, "RECLAIM_COMPLETE", &sunrpc.RootCred, false, op{code: opReclaimDone, args: func(e *sunrpc.Encoder) { e.Bool(false) }})
	if err != nil && Status(err) != 10054 /* COMPLETE_ALREADY */ {
		return fmt.Errorf("RECLAIM_COMPLETE with %s: %w", c.cfg.Server, err)
	}
	c.reclaimPending.Store(false)
	return nil
}

func (c *Client) replaceSession(ctx context.Context, old *session) (reclaim bool, err error) {
	c.recoverMu.Lock()
	defer c.recoverMu.Unlock()
	c.mu.Lock()
	cur := c.sess
	c.mu.Unlock()
	if cur != old {
		return false, nil // another call replaced it already
	}
	fresh := old == nil
	for attempt := 0; ; attempt++ {
		if fresh {
			if err := c.exchangeID(ctx); err != nil {
				return false, err
			}
		}
		s, err := c.createSession(ctx)
		if st := Status(err); (st == StatusStaleClientID || st == 10011 /* EXPIRED */) && !fresh && attempt == 0 {
			fresh = true
			continue
		}
		if err != nil {
			return false, err
		}
		c.mu.Lock()
		c.sess = s
		c.mu.Unlock()
		if old != nil {
			close(old.dead)
			go c.destroySession(old)
		}
		klog.V(2).InfoS("NFSv4.1 session established", "server", c.cfg.Server, "slots", s.nslots, "clientID", fmt.Sprintf("%x", c.clientID), "newClientID", fresh)
		return fresh, nil
	}
}

const (
	exchgidUseNonPNFS = 0x00010000
	sp4None           = 0
)

func (c *Client) exchangeID(ctx context.Context) error {
	var clientID uint64
	var seq uint32
	ex := op{code: opExchangeID, args: func(e *sunrpc.Encoder) {
		e.Fixed(c.verifier[:])
		e.Opaque(c.ownerID)
		e.Uint32(exchgidUseNonPNFS)
		e.Uint32(sp4None)
		e.Uint32(1) // client_impl_id
		e.String("github.com/nfs-subdir")
		e.String("nfs-subdir-provisioner")
		e.Uint64(0)
		e.Uint32(0)
	}, res: func(d *sunrpc.Decoder) {
		clientID, seq = d.Uint64(), d.Uint32()
		d.Uint32() // flags
		if how := d.Uint32(); d.Err == nil && how != sp4None {
			d.Fail(fmt.Errorf("state protection %d, SP4_NONE was asked for", how))
		}
		d.Uint64()         // server_owner minor id
		d.Opaque(ownerMax) // major id
		d.Opaque(ownerMax) // server scope
		if n := d.Uint32(); n > 1 {
			d.Fail(fmt.Errorf("%d server_impl_ids", n))
		} else if n == 1 {
			d.Opaque(ownerMax)
			d.Opaque(ownerMax)
			d.Skip(12)
		}
	}}
	if err := c.roundTrip(ctx, "EXCHANGE_ID", &sunrpc.RootCred, []op{ex}); err != nil {
		return fmt.Errorf("EXCHANGE_ID with %s: %w", c.cfg.Server, err)
	}
	c.mu.Lock()
	c.clientID, c.createSeq = clientID, seq
	c.mu.Unlock()
	return nil
}

// Channel sizes asked for; the server answers with what it grants.
const (
	askRequest        = 1<<20 + 4096
	askResponseCached = 16 << 10 // the replies of the calls sent with cachethis are small
)

func channelAttrs(e *sunrpc.Encoder, request, response, cached, ops, reqs uint32) {
	e.Uint32(0) // headerpadsize
	e.Uint32(request)
	e.Uint32(response)
	e.Uint32(cached)
	e.Uint32(ops)
	e.Uint32(reqs)
	e.Uint32(0) // no rdma_ird
}

type channel struct{ request, response, cached, ops, reqs uint32 }

func decodeChannel(d *sunrpc.Decoder) channel {
	d.Uint32() // headerpadsize
	ch := channel{request: d.Uint32(), response: d.Uint32(), cached: d.Uint32(), ops: d.Uint32(), reqs: d.Uint32()}
	if n := d.Uint32(); n > 1 {
		d.Fail(fmt.Errorf("%d rdma_ird values", n))
	} else if n == 1 {
		d.Uint32()
	}
	return ch
}

func (c *Client) createSession(ctx context.Context) (*session, error) {
	c.mu.Lock()
	clientID, seq := c.clientID, c.createSeq
	c.mu.Unlock()
	s := &session{dead: make(chan struct{})}
	var fore channel
	cs := op{code: opCreateSession, args: func(e *sunrpc.Encoder) {
		e.Uint64(clientID)
		e.Uint32(seq)
		e.Uint32(0) // flags: no persistence, no back channel (no delegations are asked for)
		channelAttrs(e, askRequest, uint32(c.cfg.RPC.MaxRecord), askResponseCached, maxOps, uint32(c.cfg.MaxSlots))
		channelAttrs(e, 4096, 4096, 0, 2, 1)
		e.Uint32(0x40000000) // cb_program, unused
		e.Uint32(1)          // one callback security flavor: AUTH_NONE
		e.Uint32(0)
	}, res: func(d *sunrpc.Decoder) {
		copy(s.id[:], d.Fixed(16))
		d.Uint32() // sequence
		d.Uint32() // flags
		fore = decodeChannel(d)
		decodeChannel(d)
	}}
	if err := c.roundTrip(ctx, "CREATE_SESSION", &sunrpc.RootCred, []op{cs}); err != nil {
		return nil, fmt.Errorf("CREATE_SESSION with %s: %w", c.cfg.Server, err)
	}
	c.mu.Lock()
	c.createSeq++
	c.mu.Unlock()
	if fore.reqs == 0 || fore.ops < 6 {
		return nil, fmt.Errorf("%w: CREATE_SESSION granted %d slots of %d operations", sunrpc.ErrProtocol, fore.reqs, fore.ops)
	}
	s.nslots = min(int(fore.reqs), c.cfg.MaxSlots)
	s.maxRequest, s.maxResponse, s.maxOperations = fore.request, fore.response, fore.ops
	s.slots = make(chan *slot, s.nslots)
	for i := 0; i < s.nslots; i++ {
		s.slots <- &slot{id: uint32(i), seq: 1}
	}
	return s, nil
}

func (c *Client) destroySession(s *session) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RPC.Timeout)
	defer cancel()
	ds := op{code: opDestroySession, args: func(e *sunrpc.Encoder) { e.Fixed(s.id[:]) }}
	if err := c.roundTrip(ctx, "DESTROY_SESSION", &sunrpc.RootCred, []op{ds}); err != nil {
		klog.V(2).InfoS("DESTROY_SESSION failed", "server", c.cfg.Server, "err", err)
	}
}

// call sends one COMPOUND of ops (without SEQUENCE: the session calls above, or with it).
func (c *Client) call(ctx context.Context, name string, cr *sunrpc.Cred, ops []op) error {
	p := procCompound
	p.Name = name
	return c.rpc.Call(ctx, p, cr, func(e *sunrpc.Encoder) { encodeCompound(e, name, ops) }, func(res []byte) error {
		return decodeCompound(res, ops)
	})
}

// current returns the session, making one when there is none yet or replacing one that lost
// half its slots (a replacement that failed before is tried again here, so that a session whose
// every slot is retired never leaves a call waiting for one).
func (c *Client) current(ctx context.Context) (*session, error) {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	switch {
	case s == nil:
	case s.broken.Load():
	default:
		return s, nil
	}
	if err := c.establish(ctx, s); err != nil {
		return nil, err
	}
	c.mu.Lock()
	s = c.sess
	c.mu.Unlock()
	if s == nil || s.broken.Load() {
		return nil, fmt.Errorf("no NFSv4.1 session with %s", c.cfg.Server)
	}
	return s, nil
}

func (s *session) take(ctx context.Context) (*slot, error) {
	select {
	case sl := <-s.slots:
		return sl, nil
	case <-s.dead:
		return nil, errReplaced
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// retire drops a slot whose last call got no reply; it reports whether the session should be
// replaced (half its slots are gone), and marks it so.
func (s *session) retire() bool {
	if int(s.retired.Add(1))*2 >= s.nslots {
		s.broken.Store(true)
		return true
	}
	return false
}

// compound sends SEQUENCE and ops as one COMPOUND named name (the Observer's operation) as cr.
// cachethis asks the server to keep the reply in the slot's cache: a call that changes
// something is then executed once however often it is resent on its session.
//
// Errors: NFS4ERR_DELAY and NFS4ERR_GRACE wait and resend; a session or client ID the server
// lost is made again and the call resent, marked export.ErrMaybeDone when its first attempt may
// have been executed (the transport resent it before the session was found gone).
func (c *Client) compound(ctx context.Context, name string, cr *sunrpc.Cred, cachethis bool, ops ...op) error {
	backoff := sunrpc.NewBackoff(c.retryWait)
	maybeDone := false
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		s, err := c.current(ctx)
		if err == nil && name != "RECLAIM_COMPLETE" {
			err = c.reclaim(ctx)
		}
		if err != nil {
			return err
		}
		sl, err := s.take(ctx)
		if errors.Is(err, errReplaced) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: waiting for a session slot: %w", name, err)
		}
		sequenced := false
		seq := op{code: opSequence, args: func(e *sunrpc.Encoder) {
			e.Fixed(s.id[:])
			e.Uint32(sl.seq)
			e.Uint32(sl.id)
			e.Uint32(uint32(s.nslots - 1))
			e.Bool(cachethis)
		}, res: func(d *sunrpc.Decoder) {
			id := d.Fixed(16)
			gotSeq, gotSlot := d.Uint32(), d.Uint32()
			d.Skip(12) // highest_slotid, target_highest_slotid, status_flags
			if d.Err == nil && (string(id) != string(s.id[:]) || gotSeq != sl.seq || gotSlot != sl.id) {
				d.Fail(fmt.Errorf("SEQUENCE answered for another session, slot or sequence ID"))
			}
			sequenced = d.Err == nil
		}}
		err = c.roundTrip(ctx, name, cr, append([]op{seq}, ops...))
		repeated := errors.Is(err, export.ErrMaybeDone) // the transport resent it: the first may have run
		var se *StatusError
		isStatus := errors.As(err, &se)
		seqStatus := uint32(0) // the SEQUENCE's own failure
		if isStatus && se.Op == "SEQUENCE" && !sequenced {
			seqStatus = se.Status
		}
		switch {
		case sequenced, seqStatus == StatusRetryUncached:
			// The server took the sequence ID (RETRY_UNCACHED_REP: it did, for the first
			// attempt of a resent call, and kept no reply): the slot goes on from the next.
			sl.seq++
			s.slots <- sl
			c.lastCall.Store(time.Now().UnixNano())
		case seqStatus != 0 && seqStatus != StatusSeqMisordered && seqStatus != StatusBadSlot && seqStatus != StatusSeqFalseRetry && seqStatus != StatusDelay:
			s.slots <- sl // the server did not take the sequence ID
		case err != nil && s.retire():
			// No reply, or one that does not say where the slot stands (DELAY on SEQUENCE: the
			// first attempt of a resent call is still running on it): the slot is retired, and
			// the session with it when half are gone.
			if rerr := c.establish(ctx, s); rerr != nil {
				return fmt.Errorf("%w (replacing the session: %v)", err, rerr)
			}
		}
		if err == nil {
			return nil
		}
		if !isStatus {
			if maybeDone && !repeated {
				err = &sunrpc.Repeated{Err: err}
			}
			return err
		}
		switch se.Status {
		case StatusBadSession, StatusDeadSession, 10055 /* CONN_NOT_BOUND_TO_SESSION */ :
			if !sequenced {
				maybeDone = maybeDone || repeated
				if rerr := c.establish(ctx, s); rerr != nil {
					return fmt.Errorf("%w (making a new session: %v)", err, rerr)
				}
				continue
			}
		case StatusStaleClientID:
			maybeDone = maybeDone || repeated
			if rerr := c.establish(ctx, s); rerr != nil {
				return fmt.Errorf("%w (making a new client ID: %v)", err, rerr)
			}
			continue
		case StatusSeqMisordered, StatusBadSlot, StatusSeqFalseRetry:
			maybeDone = maybeDone || repeated
			continue // on another slot
		case StatusRetryUncached:
			maybeDone = true // the first attempt ran; its reply is lost
			continue
		case StatusDelay, StatusGrace:
			// DELAY: the operation (or, on SEQUENCE, the first attempt of a resent call)
			// started and may finish; GRACE: the server takes no new state yet. Either way,
			// wait and send again.
			maybeDone = maybeDone || repeated || (se.Status == StatusDelay && cachethis)
			if !backoff.Wait(ctx) {
				return err
			}
			continue
		}
		// The server's answer. Resent on its own session, a call with cachethis was answered
		// from the reply cache: exactly once, whatever the transport did.
		if repeated && cachethis && sequenced {
			err = se
		}
		if maybeDone && !errors.Is(err, export.ErrMaybeDone) {
			err = &sunrpc.Repeated{Err: err}
		}
		return err
	}
}

// keepAlive renews the lease with a lone SEQUENCE when nothing was sent for a third of it.
func (c *Client) keepAlive() {
	defer close(c.done)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-c.stop
		cancel()
	}()
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if time.Since(time.Unix(0, c.lastCall.Load())) < c.lease/3 {
			return
		}
		if err := c.compound(ctx, "SEQUENCE", &sunrpc.RootCred, false); err != nil && ctx.Err() == nil {
			klog.V(2).InfoS("NFSv4.1 lease renewal failed", "server", c.cfg.Server, "err", err)
		}
	}, c.lease/3)
}

// Close ends the session and the client ID (DESTROY_SESSION, DESTROY_CLIENTID) and closes the
// connection; calls in flight fail.
func (c *Client) Close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	if c.lease > 0 {
		<-c.done
	}
	c.mu.Lock()
	s, clientID := c.sess, c.clientID
	c.mu.Unlock()
	if s != nil {
		c.destroySession(s)
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RPC.Timeout)
		dc := op{code: opDestroyClient, args: func(e *sunrpc.Encoder) { e.Uint64(clientID) }}
		if err := c.roundTrip(ctx, "DESTROY_CLIENTID", &sunrpc.RootCred, []op{dc}); err != nil {
			klog.V(2).InfoS("DESTROY_CLIENTID failed", "server", c.cfg.Server, "err", err)
		}
		cancel()
	}
	c.rpc.Close()
}

// Null sends the NULL procedure: is an NFSv4 server there?
func (c *Client) Null(ctx context.Context) error {
	return c.rpc.Call(ctx, procNull, nil, nil, nil)
}
