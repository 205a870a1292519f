//go:build e2e

package fault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// apiRenewDeadline is the default --leader-election-renew-deadline, which the case runs with.
const apiRenewDeadline = 10 * time.Second

// TestFaultAPIServerRestarted kills kube-apiserver (alone) during a burst of claims and starts it
// again with the same arguments: the provisioner reconnects and converges, with leader election
// on and its default timings. An outage shorter than the renew deadline must not cost a restart;
// a longer one ends the process cleanly (exit 0, "leadership lost", by design: the Deployment
// restarts it), and the case then starts it again as kubelet would and counts the restart.
func TestFaultAPIServerRestarted(t *testing.T) {
	guardOtherE2E(t)
	script := filepath.Join(fw.Env.RepoRoot, "e2e", "testbed", "apiserver.sh")
	bed := testbedDir(t)
	n := faultClaimCount(t)
	r := newFaultRun(t, "apiserver", n)
	leaseArgs := []string{"--leader-election-lease-duration=15s", "--leader-election-renew-deadline=" + apiRenewDeadline.String(), "--leader-election-retry-period=2s"}
	p := r.Start(t, true, leaseArgs...)
	command := func(verb string) string { return "TESTBED_DIR=" + bed + " " + script + " " + verb }
	stopped := false
	t.Cleanup(func() {
		if stopped {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if output, err := runCommand(ctx, command("start")); err != nil {
				t.Errorf("starting kube-apiserver again after a failure: %v\n%s", err, output)
			}
		}
	})

	ctx := framework.Context(t)
	var down, back time.Time
	kill := func(t *testing.T, f *faultFigures) {
		r.waitBurstUnderway(t, f, provisioning, "the API server was killed")
		down = time.Now()
		stopped = true
		if output, err := runCommand(ctx, command("stop")); err != nil {
			t.Fatalf("stopping kube-apiserver: %v\n%s", err, output)
		}
	}
	restart := func(t *testing.T, f *faultFigures) *framework.Process {
		if output, err := runCommand(ctx, command("start")); err != nil {
			t.Fatalf("starting kube-apiserver: %v\n%s", err, output)
		}
		stopped = false
		back = time.Now()
		f.note("API server unavailable %s (renew deadline %s)", back.Sub(down).Round(100*time.Millisecond), apiRenewDeadline)
		return nil // a clean exit on a lost Lease is by design; converge counts any other exit
	}
	// Converge; a process that ended on a lost Lease is started again, as kubelet would.
	converge := func(t *testing.T, f *faultFigures) {
		cleanExits := 0
		r.waitAllBound(t, r.Class.Name, n, faultSettleTimeout, func() error {
			if p.Running() {
				return nil
			}
			if err := cleanLeaseExit(p); err != nil {
				f.restarts++ // counted once: it is started again below, as kubelet would
				t.Errorf("the provisioner died during the API server outage: %v", err)
			} else {
				cleanExits++
			}
			p = r.Start(t, false, leaseArgs...)
			return nil
		})
		f.note("%d clean exits on a lost Lease, restarted", cleanExits)
		if outage := back.Sub(down); cleanExits > 0 && outage < apiRenewDeadline {
			t.Errorf("the provisioner gave up its Lease after a %s outage, shorter than the renew deadline %s", outage, apiRenewDeadline)
		}
	}
	r.run(t,
		scenario{name: "kube-apiserver killed and restarted during provisioning", phase: provisioning, span: 6 * time.Second,
			inject: kill, restore: restart, converge: converge},
		scenario{name: "deletion after the API server restart", phase: deletion, span: time.Second,
			restore: func(*testing.T, *faultFigures) *framework.Process { return p }},
	)
}

// cleanLeaseExit is nil when the process ended with status 0 after logging that it lost its
// leadership, the designed reaction to an API server it cannot renew its Lease with.
func cleanLeaseExit(p *framework.Process) error {
	var exitErr *exec.ExitError
	if errors.As(p.ExitErr, &exitErr) {
		return fmt.Errorf("exit status %v", p.ExitErr)
	}
	if p.ExitErr != nil {
		return p.ExitErr
	}
	content, err := os.ReadFile(p.LogPath)
	if err != nil {
		return err
	}
	if !strings.Contains(string(content), "leadership lost") {
		return errors.New(`exited 0 without logging "leadership lost"`)
	}
	return nil
}
