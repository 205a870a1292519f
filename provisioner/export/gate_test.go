package export_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire"
)

// countingOpener opens nothing (a nil FS) but counts the operations the gate let through.
type countingOpener struct{ opens int }

func (o *countingOpener) Open(context.Context, string, string) (export.FS, error) {
	o.opens++
	return nil, nil
}

// gateRun runs one operation on server through g that ends with err, and says whether the gate
// let it through.
func gateRun(g *export.Gate, o *countingOpener, server string, err error) (passed bool, gateErr error) {
	before := o.opens
	gateErr = g.Do(context.Background(), server, "/srv", time.Second, func(context.Context, export.FS) error { return err })
	return o.opens > before, gateErr
}

func TestGate(t *testing.T) {
	clock := testingclock.NewFakePassiveClock(time.Unix(1000, 0))
	o := &countingOpener{}
	g := export.NewGateWithClock(o, clock)
	timeout := fmt.Errorf("mkdir: %w", context.DeadlineExceeded)

	if passed, _ := gateRun(g, o, "a", timeout); !passed {
		t.Fatal("a healthy server was turned away")
	}
	if passed, err := gateRun(g, o, "A", nil); passed || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("a server that just timed out is let through at once, or the cause is not named: %v", err)
	}
	var openErr *export.OpenError
	if _, err := gateRun(g, o, "a", nil); !errors.As(err, &openErr) {
		t.Fatalf("a turned-away operation is not an OpenError (nothing done): %T %v", err, err)
	}
	if passed, _ := gateRun(g, o, "b", nil); !passed {
		t.Fatal("another server is held back")
	}
	if g.Healthy("a") || !g.Healthy("b") {
		t.Fatal("Healthy misreports")
	}

	clock.SetTime(clock.Now().Add(time.Second))
	if passed, _ := gateRun(g, o, "a", timeout); !passed {
		t.Fatal("after the back-off one probe must pass")
	}
	// The probe failed: the back-off doubles.
	clock.SetTime(clock.Now().Add(time.Second))
	if passed, _ := gateRun(g, o, "a", nil); passed {
		t.Fatal("back-off did not grow after a failed probe")
	}
	clock.SetTime(clock.Now().Add(time.Second))
	// Any NFS answer proves the server is up.
	if passed, _ := gateRun(g, o, "a", fmt.Errorf("mkdir: %w", export.ErrPermission)); !passed {
		t.Fatal("second probe turned away")
	}
	for i := 0; i < 3; i++ {
		if passed, _ := gateRun(g, o, "a", nil); !passed {
			t.Fatal("server answered but the gate stays shut")
		}
	}
}

// Operations in flight when a server dies fail too; they must not push recovery further out,
// and only one probe at a time tests the server.
func TestGateOneProbe(t *testing.T) {
	clock := testingclock.NewFakePassiveClock(time.Unix(1000, 0))
	o := &countingOpener{}
	g := export.NewGateWithClock(o, clock)
	release := make(chan struct{})
	probing := make(chan struct{})
	gateRun(g, o, "a", context.DeadlineExceeded)
	clock.SetTime(clock.Now().Add(time.Second))
	done := make(chan error)
	go func() {
		done <- g.Do(context.Background(), "a", "/srv", time.Minute, func(context.Context, export.FS) error {
			close(probing)
			<-release
			return nil
		})
	}()
	<-probing
	if passed, _ := gateRun(g, o, "a", nil); passed {
		t.Fatal("a second operation passed while the probe is in flight")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if passed, _ := gateRun(g, o, "a", nil); !passed {
		t.Fatal("the probe succeeded, but the gate stays shut")
	}
}

func TestGateIgnoresCancellation(t *testing.T) {
	o := &countingOpener{}
	g := export.NewGate(o)
	gateRun(g, o, "a", context.Canceled)
	gateRun(g, o, "a", export.ErrInvalidPath)
	gateRun(g, o, "a", export.Answered(context.DeadlineExceeded))
	if passed, err := gateRun(g, o, "a", nil); !passed {
		t.Fatalf("cancellation, a refused path or an answered failure closed the gate: %v", err)
	}
	gateRun(g, o, "a", errors.New("connection refused"))
	if g.Healthy("a") {
		t.Fatal("a refused connection did not count")
	}
}

// A server that answers with an error status — a full disk, a quota, an I/O error, a fault, an
// RPC denial — is up: the gate stays shut, so the deletes that would free space still reach it.
func TestGateErrorStatusesAreAnswers(t *testing.T) {
	answers := map[string]error{
		"NOSPC":       &wire.StatusError{Status: nfsc.NFS3ErrNoSpc},
		"DQUOT":       &wire.StatusError{Status: nfsc.NFS3ErrDQuot},
		"IO":          &wire.StatusError{Status: nfsc.NFS3ErrIO},
		"SERVERFAULT": &wire.StatusError{Status: nfsc.NFS3ErrServerFault},
		"ROFS":        &wire.StatusError{Status: nfsc.NFS3ErrROFS},
		"MNT3ERR_IO":  &wire.StatusError{Mount: true, Status: nfsc.MNT3ErrIO},
		"AUTH_ERROR":  &sunrpc.RPCError{Denied: true, Stat: 1, Auth: 5},
		"SYSTEM_ERR":  &sunrpc.RPCError{Stat: 5},
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			o := &countingOpener{}
			g := export.NewGate(o)
			gateRun(g, o, "nfs.example", fmt.Errorf("remove x: %w", answer))
			if passed, err := gateRun(g, o, "nfs.example", nil); !passed {
				t.Fatalf("the server answered %v, yet the gate turns operations away: %v", answer, err)
			}
		})
	}
}

// One server, several spellings: the gate that closed for one spelling is closed for all of them.
func TestGateCanonicalName(t *testing.T) {
	o := &countingOpener{}
	g := export.NewGate(o)
	gateRun(g, o, "nfs.example", context.DeadlineExceeded)
	for _, spelling := range []string{"NFS.example", "nfs.example.", " nfs.example"} {
		if passed, _ := gateRun(g, o, spelling, nil); passed {
			t.Errorf("gate closed for nfs.example lets %q through", spelling)
		}
	}
}

// refusingOpener's server refuses every mount, as Linux knfsd refuses a client on an unreserved
// port of an export with 'secure' (MNT3ERR_ACCES).
type refusingOpener struct{}

func (refusingOpener) Open(context.Context, string, string) (export.FS, error) {
	return nil, &wire.StatusError{Mount: true, Status: nfsc.MNT3ErrAcces}
}

// A refused mount names the setting that lets the provisioner use a reserved port, the usual
// reason Linux's own server refuses a client that is allowed by its export line.
func TestGateRefusedMountNamesThePrivilegedPortSetting(t *testing.T) {
	g := export.NewGate(refusingOpener{})
	err := g.Do(context.Background(), "knfsd.example", "/srv/nfs", time.Second, func(context.Context, export.FS) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "nfs.privilegedPort") || !strings.Contains(err.Error(), "--privileged-port") {
		t.Fatalf("refused mount: %v, want the error to name nfs.privilegedPort and --privileged-port", err)
	}
}
