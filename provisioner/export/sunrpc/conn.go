package sunrpc

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrConnection is wrapped by errors that come from the connection rather
// than from the server's answer: it could not be made, or it was closed,
// reset, or dropped because it stalled. The call may or may not have been
// executed.
var ErrConnection = errors.New("rpc connection failed")

// errDial marks connection errors of a dial: nothing was sent.
var errDial = errors.New("dial")

// conn is one TCP connection carrying pipelined RPC calls. A single reader
// goroutine reads records and hands each to the caller waiting for its
// XID; a record nobody waits for (unknown, expired or duplicate XID) is
// dropped on the floor. Callers never block on the reader and the reader
// never blocks on callers.
type conn struct {
	nc    net.Conn
	start time.Time
	wmu   sync.Mutex // serialises writes of whole records

	mu      sync.Mutex
	pending map[uint32]chan []byte // each buffered(1), receives at most once
	err     error                  // why the connection was dropped
	dead    chan struct{}          // closed when dropped

	lastRecv  atomic.Int64 // time.Since(start) when bytes last arrived
	maxRecord int
	done      chan struct{} // closed when the reader goroutine has exited
	onDrop    func(error)   // told once why the connection was dropped
}

func newConn(nc net.Conn, maxRecord int, onDrop func(error)) *conn {
	c := &conn{
		onDrop:    onDrop,
		nc:        nc,
		start:     time.Now(),
		pending:   make(map[uint32]chan []byte),
		dead:      make(chan struct{}),
		maxRecord: maxRecord,
		done:      make(chan struct{}),
	}
	c.lastRecv.Store(-1)
	go c.readLoop()
	return c
}

func (c *conn) now() int64 { return int64(time.Since(c.start)) }

func (c *conn) readLoop() {
	defer close(c.done)
	defer func() {
		if r := recover(); r != nil { // cannot happen; never let it kill the process
			c.drop(fmt.Errorf("%w: reader panic: %v", ErrProtocol, r))
		}
	}()
	br := bufio.NewReaderSize(c.nc, 32<<10)
	for {
		rec, err := ReadRecord(br, c.maxRecord)
		if err != nil {
			c.drop(err)
			return
		}
		// Only a whole record is progress: a server trickling empty or
		// tiny fragments must not keep a connection whose calls all time
		// out from being dropped and redialled.
		c.lastRecv.Store(c.now())
		if len(rec) < 4 {
			c.drop(fmt.Errorf("%w: record of %d bytes has no xid", ErrProtocol, len(rec)))
			return
		}
		xid := binary.BigEndian.Uint32(rec)
		c.mu.Lock()
		ch, ok := c.pending[xid]
		if ok {
			delete(c.pending, xid)
		}
		c.mu.Unlock()
		if ok {
			ch <- rec // buffered and removed from the map: never blocks
		}
	}
}

// drop closes the connection once; every pending and later call fails
// with err.
func (c *conn) drop(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = fmt.Errorf("%w: %v", ErrConnection, err)
	c.pending = nil
	close(c.dead)
	c.mu.Unlock()
	c.nc.Close()
	if c.onDrop != nil {
		c.onDrop(err)
	}
}

func (c *conn) alive() bool {
	select {
	case <-c.dead:
		return false
	default:
		return true
	}
}

func (c *conn) deadErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// roundTrip sends one framed call and waits for the record with its xid,
// until ctx (which must have a deadline) is done. A call that times out on
// a connection from which nothing at all arrived since the call was sent
// drops the connection: it is stalled, and the next call redials.
func (c *conn) roundTrip(ctx context.Context, xid uint32, msg []byte) ([]byte, error) {
	ch := make(chan []byte, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.pending[xid] = ch
	c.mu.Unlock()

	sent := c.now()
	deadline, _ := ctx.Deadline()
	c.wmu.Lock()
	err := ctx.Err() // the deadline may have passed while waiting for the lock
	n := 0
	if err == nil {
		c.nc.SetWriteDeadline(deadline)
		n, err = c.nc.Write(msg)
	}
	c.wmu.Unlock()
	if err != nil {
		if n == 0 && (ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded)) {
			// Out of time before a byte was sent: the stream is intact.
			c.forget(xid)
			return nil, fmt.Errorf("sending the call: %w", context.DeadlineExceeded)
		}
		// A partly written record corrupts the stream for every caller.
		c.drop(fmt.Errorf("write: %v", err))
		return nil, c.deadErr()
	}

	select {
	case rec := <-ch:
		return rec, nil
	case <-c.dead:
		select {
		case rec := <-ch: // the reply won the race against the drop
			return rec, nil
		default:
		}
		return nil, c.deadErr()
	case <-ctx.Done():
		c.forget(xid)
		if c.lastRecv.Load() < sent {
			c.drop(errors.New("stalled: no data received since a call that timed out was sent"))
		}
		return nil, ctx.Err()
	}
}

// forget stops waiting for xid's reply; a late reply is discarded.
func (c *conn) forget(xid uint32) {
	c.mu.Lock()
	if c.pending != nil {
		delete(c.pending, xid)
	}
	c.mu.Unlock()
}

// close drops the connection and waits for its reader to exit.
func (c *conn) close() {
	c.drop(errors.New("closed"))
	<-c.done
}
