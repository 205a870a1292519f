package provisioner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire"
)

func TestServerGate(t *testing.T) {
	now := time.Unix(1000, 0)
	g := newServerGate()
	g.now = func() time.Time { return now }
	timeout := fmt.Errorf("mkdir: %w", context.DeadlineExceeded)

	if probe, err := g.enter("a"); err != nil || probe {
		t.Fatalf("healthy server: probe %v err %v", probe, err)
	}
	g.leave("a", false, timeout)
	g.leave("a", false, timeout) // a second call in flight when it died
	g.leave("a", false, timeout)
	if _, err := g.enter("A"); err == nil || !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("a server that just timed out is let through at once, or the cause is not named: %v", err)
	}
	if _, err := g.enter("b"); err != nil {
		t.Fatalf("another server is held back: %v", err)
	}

	now = now.Add(minGateBackoff)
	probe, err := g.enter("a")
	if err != nil || !probe {
		t.Fatalf("after the back-off one probe must pass: probe %v err %v", probe, err)
	}
	if _, err := g.enter("a"); err == nil {
		t.Fatal("a second operation passed while the probe is in flight")
	}
	g.leave("a", true, timeout) // still dead: the back-off doubles
	now = now.Add(minGateBackoff)
	if _, err := g.enter("a"); err == nil {
		t.Fatal("back-off did not grow after a failed probe")
	}
	now = now.Add(minGateBackoff)
	probe, err = g.enter("a")
	if err != nil || !probe {
		t.Fatalf("second probe: %v", err)
	}
	// Any NFS answer proves the server is up.
	g.leave("a", true, fmt.Errorf("mkdir: %w", export.ErrPermission))
	for i := 0; i < 3; i++ {
		if probe, err := g.enter("a"); err != nil || probe {
			t.Fatalf("server answered but the gate stays shut: probe %v err %v", probe, err)
		}
	}
}

func TestServerGateIgnoresCancellation(t *testing.T) {
	g := newServerGate()
	g.leave("a", false, context.Canceled)
	g.leave("a", false, export.ErrInvalidPath)
	if _, err := g.enter("a"); err != nil {
		t.Fatalf("cancellation or a refused path closed the gate: %v", err)
	}
	if noAnswer(nil) || !noAnswer(errors.New("connection refused")) {
		t.Fatal("noAnswer misclassifies")
	}
}

// A provision for a dead server must fail at once, not hold a worker for
// its timeouts, once the first one has found the server dead.
func TestProvisionFailsFastForDeadServer(t *testing.T) {
	f := newFixture(t)
	dead := &countingOpener{err: fmt.Errorf("dial: %w", context.DeadlineExceeded)}
	f.prov.cfg.Opener = dead
	for i := 0; i < 5; i++ {
		if _, _, err := f.provision(newClaim(nil), newClass(nil)); err == nil {
			t.Fatal("provision on a dead server succeeded")
		}
	}
	if dead.opens != 1 {
		t.Errorf("%d attempts reached the dead server, want 1 (the rest turned away by the gate)", dead.opens)
	}
}

type countingOpener struct {
	err   error
	opens int
}

func (o *countingOpener) Open(context.Context, string, string) (export.FS, error) {
	o.opens++
	return nil, o.err
}

// A server that answers with an error status — a full disk, a quota, an
// I/O error, a fault, an RPC denial — is up: the gate stays shut, so the
// deletes that would free space still reach it.
func TestServerGateErrorStatusesAreAnswers(t *testing.T) {
	answers := map[string]error{
		"NOSPC":       &wire.StatusError{Status: nfsc.NFS3ErrNoSpc},
		"DQUOT":       &wire.StatusError{Status: nfsc.NFS3ErrDQuot},
		"IO":          &wire.StatusError{Status: nfsc.NFS3ErrIO},
		"SERVERFAULT": &wire.StatusError{Status: nfsc.NFS3ErrServerFault},
		"ROFS":        &wire.StatusError{Status: nfsc.NFS3ErrROFS},
		"MNT3ERR_IO":  &wire.StatusError{Mount: true, Status: nfsc.MNT3ErrIO},
		"AUTH_ERROR":  &wire.RPCError{Denied: true, Stat: 1, Auth: 5},
		"SYSTEM_ERR":  &wire.RPCError{Stat: 5},
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			g := newServerGate()
			g.leave("nfs.example", false, fmt.Errorf("remove x: %w", answer))
			if _, err := g.enter("nfs.example"); err != nil {
				t.Fatalf("the server answered %v, yet the gate turns operations away: %v", answer, err)
			}
		})
	}
}

// One server, several spellings: the gate that closed for one spelling is
// closed for all of them.
func TestServerGateCanonicalName(t *testing.T) {
	g := newServerGate()
	g.leave("nfs.example", false, context.DeadlineExceeded)
	for _, spelling := range []string{"NFS.example", "nfs.example.", " nfs.example"} {
		if _, err := g.enter(spelling); err == nil {
			t.Errorf("gate closed for nfs.example lets %q through", spelling)
		}
	}
}
