package sunrpc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"k8s.io/klog/v2"
)

// ErrClosed is returned by calls on a closed Opener or session.
var ErrClosed = errors.New("nfs client closed")

// Procedure names one remote procedure.
type Procedure struct {
	Prog, Vers, Proc uint32
	Name             string // operation name given to the Observer
}

// Client calls one RPC program at one address over a connection it keeps,
// redialling on the next call after the connection was dropped.
type Client struct {
	server    string // for the observer and errors (host only)
	dial      func(ctx context.Context) (net.Conn, error)
	timeout   time.Duration
	machine   string
	maxRecord int
	observe   Observer

	xid atomic.Uint32

	mu      sync.Mutex
	cur     *conn
	dialing chan struct{}
	closed  bool
	old     []*conn // dropped connections whose readers may still run
}

// Observer is told about every RPC round trip: the server (host as given), the operation, how
// long it took and its result (the decoder's error included). It is called synchronously and
// must be fast and safe for concurrent use.
type Observer func(server, op string, dur time.Duration, err error)

// Config is how a Client calls.
type Config struct {
	Timeout     time.Duration // per call, when the context has no earlier deadline; must be > 0
	MachineName string        // in AUTH_SYS credentials
	MaxRecord   int           // the largest reply record taken; must be > 0
	Observer    Observer      // may be nil
}

// NewClient returns a client of server that connects with dial on its first call.
func NewClient(server string, dial func(context.Context) (net.Conn, error), cfg Config) *Client {
	c := &Client{
		server:    server,
		dial:      dial,
		timeout:   cfg.Timeout,
		machine:   cfg.MachineName,
		maxRecord: cfg.MaxRecord,
		observe:   cfg.Observer,
	}
	c.xid.Store(rand.Uint32())
	return c
}

// conn returns the live connection, dialling one when there is none. One
// caller dials; the others wait for it or for their own deadline.
func (c *Client) conn(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if c.cur != nil && c.cur.alive() {
			cc := c.cur
			c.mu.Unlock()
			return cc, nil
		}
		if c.cur != nil {
			c.old = append(c.old, c.cur)
			c.cur = nil
		}
		if ch := c.dialing; ch != nil {
			c.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ch := make(chan struct{})
		c.dialing = ch
		c.mu.Unlock()

		nc, err := c.dial(ctx)

		c.mu.Lock()
		c.dialing = nil
		close(ch)
		if err != nil {
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: %w: %v", ErrConnection, errDial, err)
		}
		if c.closed {
			c.mu.Unlock()
			nc.Close()
			return nil, ErrClosed
		}
		local, remote := nc.LocalAddr().String(), nc.RemoteAddr().String()
		cc := newConn(nc, c.maxRecord, func(err error) {
			klog.V(2).InfoS("NFS client connection dropped", "server", c.server, "local", local, "remote", remote, "reason", err.Error())
		})
		c.cur = cc
		c.reapLocked()
		c.mu.Unlock()
		return cc, nil
	}
}

// reapLocked forgets dropped connections whose reader has exited.
func (c *Client) reapLocked() {
	keep := c.old[:0]
	for _, o := range c.old {
		select {
		case <-o.done:
		default:
			keep = append(keep, o)
		}
	}
	c.old = keep
}

// call sends one call with AUTH_SYS credential cr (AUTH_NONE when nil),
// bounded by ctx and by the client's timeout, and hands the Procedure's
// results (which alias the reply record) to decode. The Observer sees the
// round trip with decode's error, so NFS statuses are part of its result.
//
// When the connection dies under a call (typically the server closed it
// while idle, or restarted) the call is sent once more on a fresh
// connection, with the same XID, as NFS clients do: a server whose
// duplicate request cache matches the repeat (Ganesha's keys on the XID;
// Linux knfsd's also on the client's port, which a new connection
// rarely keeps) answers it with the first reply. Otherwise the server may
// execute it twice: callers send only procedures that are safe to repeat
// (wire's are listed on nfs3Client, in wire/procs.go).
func (c *Client) Call(ctx context.Context, p Procedure, cr *Cred, args func(*Encoder), decode func([]byte) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	xid := c.xid.Add(1)
	err := c.callOnce(ctx, xid, p, cr, args, decode)
	if errors.Is(err, ErrConnection) && !errors.Is(err, errDial) && ctx.Err() == nil {
		if err = c.callOnce(ctx, xid, p, cr, args, decode); err != nil {
			err = &Repeated{err}
		}
	}
	return err
}

// Repeated is the error of a call sent a second time after its
// connection died: the first may have been executed. It matches
// export.ErrMaybeDone.
type Repeated struct{ Err error }

func (e *Repeated) Error() string        { return e.Err.Error() }
func (e *Repeated) Unwrap() error        { return e.Err }
func (e *Repeated) Is(target error) bool { return target == export.ErrMaybeDone }

func (c *Client) callOnce(ctx context.Context, xid uint32, p Procedure, cr *Cred, args func(*Encoder), decode func([]byte) error) error {
	start := time.Now()
	res, err := c.exchange(ctx, xid, p, cr, args)
	if err == nil && decode != nil {
		err = decode(res)
	}
	if c.observe != nil {
		c.observe(c.server, p.Name, time.Since(start), err)
	}
	return err
}

func (c *Client) exchange(ctx context.Context, xid uint32, p Procedure, cr *Cred, args func(*Encoder)) ([]byte, error) {
	cc, err := c.conn(ctx)
	if err != nil {
		return nil, err
	}
	e := Encoder{B: make([]byte, 4, 256)}
	AppendCall(&e, xid, p.Prog, p.Vers, p.Proc, cr, c.machine)
	if args != nil {
		args(&e)
	}
	Frame(e.B)
	rec, err := cc.roundTrip(ctx, xid, e.B)
	if err != nil {
		return nil, err
	}
	return DecodeReply(rec, xid)
}

// close drops the connection and waits for every reader goroutine.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	conns := append(c.old, c.cur)
	c.cur, c.old = nil, nil
	c.mu.Unlock()
	for _, cc := range conns {
		if cc != nil {
			cc.close()
		}
	}
}
