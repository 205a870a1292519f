package export

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
)

// Gate reaches exports through an Opener and keeps a server that stops answering from tying up
// every worker, so that a dead or stalled server slows only the volumes on it. After an
// operation on a server fails without an answer (deadline, connection refused, garbage),
// operations on that server fail at once for a back-off that doubles up to 8 s; when
// it has passed, one operation at a time probes the server, and the first answer — success or
// any NFS status — closes the gate again. The caller's retries (a work queue) bring back what
// was turned away.
type Gate struct {
	opener  Opener
	clock   clock.PassiveClock
	mu      sync.Mutex
	servers map[string]*gateState
}

type gateState struct {
	failures  int
	openUntil time.Time
	probing   bool
	lastErr   error        // what the last failed operation got, for the turned-away ones
	backoff   wait.Backoff // 1 s, doubling with each failed probe, at most 8 s
}

func newGateState() *gateState {
	return &gateState{backoff: wait.Backoff{Duration: time.Second, Factor: 2, Cap: 8 * time.Second, Steps: math.MaxInt32}}
}

// NewGate returns a gate in front of o.
func NewGate(o Opener) *Gate { return NewGateWithClock(o, clock.RealClock{}) }

// NewGateWithClock returns a gate in front of o whose back-offs follow c (tests).
func NewGateWithClock(o Opener, c clock.PassiveClock) *Gate {
	return &Gate{opener: o, clock: c, servers: map[string]*gateState{}}
}

// OpenError is a failure to reach an export (turned away by the gate, or the export could not be
// opened): nothing was done on it.
type OpenError struct{ Err error }

func (e *OpenError) Error() string { return e.Err.Error() }
func (e *OpenError) Unwrap() error { return e.Err }

// Do runs op on the export server:share within timeout, through the gate: a server that stopped
// answering turns op away at once, and op's outcome tells the gate whether the server answered.
// A failure to open the export is an *OpenError.
func (g *Gate) Do(ctx context.Context, server, share string, timeout time.Duration, op func(context.Context, FS) error) error {
	probe, err := g.enter(server)
	if err != nil {
		return &OpenError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fsys, err := g.opener.Open(ctx, server, share)
	if err != nil {
		g.leave(server, probe, err)
		return &OpenError{fmt.Errorf("open export %s:%s: %w%s", server, share, err, openHint(err))}
	}
	err = op(ctx, fsys)
	g.leave(server, probe, err)
	return err
}

// openHint says what to check when an export cannot be mounted.
func openHint(err error) string {
	switch {
	case errors.Is(err, ErrPermission):
		return "; the server refused to mount it: give the export path exactly as the server exports it (NFS_PATH or the class's share parameter) and check the server allows this client; " +
			"a server exporting with 'secure' (Linux knfsd's default) answers only clients on a port below 1024: let the provisioner bind one (chart: nfs.privilegedPort=true; flag --privileged-port) or export with 'insecure'"
	case errors.Is(err, ErrNotExist):
		return "; the server has no such export: give the export path exactly as the server exports it (NFS_PATH or the class's share parameter; over NFSv4.1, its path in the server's pseudo-filesystem, such as / on Amazon EFS)"
	case errors.Is(err, context.DeadlineExceeded):
		return "; the NFS server did not answer in time: check it is up and reachable from the provisioner; this is retried"
	}
	return "; check the server name (NFS_SERVER or the class's server parameter) and that it serves the NFS version asked for over TCP (NFSv3 by default; servers without v3: class parameter nfsVersion=4.1, mountOptions nfsvers=4.1, or NFS_VERSION=4.1); this is retried"
}

// enter asks to start an operation on server. probe says the caller is the one operation allowed
// through to test a server that has been failing; it must hand it back to leave.
func (g *Gate) enter(server string) (probe bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.servers[CanonicalServer(server)]
	if s == nil || s.failures == 0 {
		return false, nil
	}
	if now := g.clock.Now(); now.Before(s.openUntil) || s.probing {
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

// Healthy reports whether server has no failures on record: its next operation is not a probe.
func (g *Gate) Healthy(server string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.servers[CanonicalServer(server)]
	return s == nil || s.failures == 0
}

// leave records the outcome of an operation started with enter.
func (g *Gate) leave(server string, probe bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := CanonicalServer(server)
	s := g.servers[key]
	if s == nil {
		if !noAnswer(err) {
			return
		}
		s = newGateState()
		g.servers[key] = s
	}
	if probe {
		s.probing = false
	}
	switch {
	case noAnswer(err):
		// Only the first failure and failed probes move the back-off: the operations that were
		// already in flight when the server died fail too, and must not push recovery further out.
		if s.failures > 0 && !probe {
			return
		}
		s.failures++
		s.lastErr = err
		s.openUntil = g.clock.Now().Add(s.backoff.Step())
	case err == nil || answered(err):
		delete(g.servers, key)
	}
}

// Answered marks err as the end of an operation after which the server is known to be up (it
// answered calls before this failure): the gate does not count it. nil stays nil.
func Answered(err error) error {
	if err == nil {
		return nil
	}
	return answeredError{err}
}

type answeredError struct{ err error }

func (e answeredError) Error() string        { return e.err.Error() }
func (e answeredError) Unwrap() error        { return e.err }
func (e answeredError) Is(target error) bool { return target == ErrServerReply }

// answered reports whether err is the server's own answer, which proves it is up: any NFS status
// (NOSPC and DQUOT included: the deletes that would free space must still get through), any
// RPC-level reply.
func answered(err error) bool {
	for _, target := range []error{ErrServerReply, ErrNotExist, ErrExist, ErrPermission, ErrNotDir} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// noAnswer reports whether err means the server did not answer usefully. Cancellation
// (shutdown, lost leadership) and our own path refusals say nothing about the server.
func noAnswer(err error) bool {
	return err != nil && !answered(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrInvalidPath)
}
