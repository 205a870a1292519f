//go:build e2e

package e2e

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
	script := filepath.Join(suite.env.repoRoot, "e2e", "testbed", "apiserver.sh")
	bed := testbedDir(t)
	n := faultClaimCount(t)
	r := newFaultRun(t, "apiserver", n)
	leaseArgs := []string{"--leader-election-lease-duration=15s", "--leader-election-renew-deadline=" + apiRenewDeadline.String(), "--leader-election-retry-period=2s"}
	p := r.start(t, true, leaseArgs...)
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

	f := faultFigures{name: "kube-apiserver killed and restarted during provisioning", claims: n}
	created := r.createClaimsPaced(t, r.class.Name, 0, n, 6*time.Second)
	f.note("%d PVs when the API server was killed", r.waitVolumeCount(t, max(1, n/5), false, faultSettleTimeout))
	ctx := testContext(t)
	down := time.Now()
	stopped = true
	if output, err := runCommand(ctx, command("stop")); err != nil {
		t.Fatalf("stopping kube-apiserver: %v\n%s", err, output)
	}
	if output, err := runCommand(ctx, command("start")); err != nil {
		t.Fatalf("starting kube-apiserver: %v\n%s", err, output)
	}
	stopped = false
	back := time.Now()
	outage := back.Sub(down)
	f.note("API server unavailable %s (renew deadline %s)", outage.Round(100*time.Millisecond), apiRenewDeadline)

	// Converge; a process that ended on a lost Lease is started again, as kubelet would.
	cleanExits := 0
	restartIfExited := func(t *testing.T) error {
		if p.running() {
			return nil
		}
		if err := cleanLeaseExit(p); err != nil {
			f.restarts++
			t.Errorf("the provisioner died during the API server outage: %v", err)
			return err
		}
		cleanExits++
		p = r.start(t, false, leaseArgs...)
		return nil
	}
	poll(t, fmt.Sprintf("%d claims Bound", n), faultSettleTimeout, func(ctx context.Context) (bool, error) {
		if err := restartIfExited(t); err != nil {
			return false, err
		}
		claims, err := r.listClaims(ctx, r.class.Name)
		if err != nil {
			return false, err
		}
		bound := 0
		for _, claim := range claims {
			if claim.Status.Phase == "Bound" {
				bound++
			}
		}
		return len(claims) == n && bound == n, fmt.Errorf("%d claims, %d Bound", len(claims), bound)
	})
	f.recovery = time.Since(back)
	if err := created(); err != nil {
		t.Fatal(err)
	}
	f.note("%d clean exits on a lost Lease, restarted", cleanExits)
	if cleanExits > 0 && outage < apiRenewDeadline {
		t.Errorf("the provisioner gave up its Lease after a %s outage, shorter than the renew deadline %s", outage, apiRenewDeadline)
	}
	r.checkProvisioned(t, &f, r.class.Name, defaultExportDirs())
	f.panics = r.countPanics(t)
	// The suite's shared provisioner (default Lease timings too) must ride it out the same way;
	// after a clean exit it is started again so the rest of the suite has it.
	if !suite.provisioner.running() {
		if err := cleanLeaseExit(suite.provisioner); err != nil {
			f.restarts++
			t.Errorf("the suite's shared provisioner died during the API server outage: %v", err)
		} else if outage < apiRenewDeadline {
			t.Errorf("the suite's shared provisioner gave up its Lease after a %s outage", outage)
		}
		logPath := suite.provisioner.logPath + ".after-apiserver-restart"
		kubeconfig := filepath.Join(filepath.Dir(suite.provisioner.logPath), "provisioner.kubeconfig")
		restarted, err := startProvisioner(ctx, suite.env, kubeconfig, logPath)
		if err != nil {
			t.Fatalf("starting the suite's shared provisioner again: %v", err)
		}
		suite.provisioner = restarted
		f.note("shared provisioner restarted after a clean exit")
	}
	f.report(t)

	t.Run("deletion after the restart", func(t *testing.T) {
		d := faultFigures{name: "deletion after the API server restart", claims: n}
		if err := r.deleteClaimsPaced(t, claimNames(0, n), time.Second)(); err != nil {
			t.Fatal(err)
		}
		d.recovery = r.waitAllVolumesGone(t, faultSettleTimeout)
		r.checkDeleted(t, &d, defaultExportDirs())
		if d.archived != n {
			t.Errorf("%d archived directories, want %d", d.archived, n)
		}
		d.panics = r.countPanics(t)
		if !p.running() {
			d.restarts++
		}
		d.report(t)
	})
}

// cleanLeaseExit is nil when the process ended with status 0 after logging that it lost its
// leadership, the designed reaction to an API server it cannot renew its Lease with.
func cleanLeaseExit(p *provisionerProcess) error {
	var exitErr *exec.ExitError
	if errors.As(p.exitErr, &exitErr) {
		return fmt.Errorf("exit status %v", p.exitErr)
	}
	if p.exitErr != nil {
		return p.exitErr
	}
	content, err := os.ReadFile(p.logPath)
	if err != nil {
		return err
	}
	if !strings.Contains(string(content), "leadership lost") {
		return errors.New(`exited 0 without logging "leadership lost"`)
	}
	return nil
}
