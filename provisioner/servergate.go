package provisioner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// serverGate keeps a server that stops answering from tying up every
// worker, so that a dead or stalled server slows only the volumes on it.
// After an operation on a server fails without an answer (deadline,
// connection refused, garbage), operations on that server fail at once for
// a back-off that doubles up to maxGateBackoff; when it has passed, one
// operation at a time probes the server, and the first answer — success or
// any NFS status — closes the gate again. The workqueue retries the claims
// that were turned away.
type serverGate struct {
	mu      sync.Mutex
	servers map[string]*gateState
	now     func() time.Time
}

type gateState struct {
	failures  int
	openUntil time.Time
	probing   bool
	lastErr   error // what the last failed operation got, for the turned-away ones
}

const (
	minGateBackoff = time.Second
	maxGateBackoff = 8 * time.Second
)

func newServerGate() *serverGate {
	return &serverGate{servers: map[string]*gateState{}, now: time.Now}
}

// enter asks to start an operation on server. probe says the caller is the
// one operation allowed through to test a server that has been failing; it
// must hand it back to leave.
func (g *serverGate) enter(server string) (probe bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.servers[export.CanonicalServer(server)]
	if s == nil || s.failures == 0 {
		return false, nil
	}
	if now := g.now(); now.Before(s.openUntil) || s.probing {
		wait := s.openUntil.Sub(now).Round(100 * time.Millisecond)
		if wait < 0 {
			wait = 0
		}
		return false, fmt.Errorf("NFS server %s is not answering (%d operations in a row got no answer, the last: %v); the next try is in %s or after the one in progress; check that it is up and reachable from the provisioner",
			server, s.failures, s.lastErr, wait)
	}
	s.probing = true
	return true, nil
}

// healthy reports whether server has no failures on record: its next
// operation is not a probe.
func (g *serverGate) healthy(server string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.servers[export.CanonicalServer(server)]
	return s == nil || s.failures == 0
}

// leave records the outcome of an operation started with enter.
func (g *serverGate) leave(server string, probe bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := export.CanonicalServer(server)
	s := g.servers[key]
	if s == nil {
		if !noAnswer(err) {
			return
		}
		s = &gateState{}
		g.servers[key] = s
	}
	if probe {
		s.probing = false
	}
	switch {
	case noAnswer(err):
		// Only the first failure and failed probes move the back-off: the
		// operations that were already in flight when the server died fail
		// too, and must not push recovery further out.
		if s.failures > 0 && !probe {
			return
		}
		s.failures++
		s.lastErr = err
		backoff := maxGateBackoff
		if s.failures < 4 {
			backoff = min(minGateBackoff<<(s.failures-1), maxGateBackoff)
		}
		s.openUntil = g.now().Add(backoff)
	case err == nil || answered(err):
		delete(g.servers, key)
	}
}

// answered reports whether err is the server's own answer, which proves it
// is up: any NFS status (NOSPC and DQUOT included: the deletes that would
// free space must still get through), any RPC-level reply.
func answered(err error) bool {
	for _, target := range []error{export.ErrServerReply, export.ErrNotExist, export.ErrExist, export.ErrPermission, export.ErrNotDir} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// noAnswer reports whether err means the server did not answer usefully.
// Cancellation (shutdown, lost leadership) and our own path refusals say
// nothing about the server.
func noAnswer(err error) bool {
	return err != nil && !answered(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, export.ErrInvalidPath)
}
