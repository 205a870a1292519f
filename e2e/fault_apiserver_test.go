//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestFaultAPIServerRestarted restarts kube-apiserver (alone, same arguments) during a burst of
// claims: the provisioner reconnects and converges without restarting, with leader election on
// and its default timings.
func TestFaultAPIServerRestarted(t *testing.T) {
	guardOtherE2E(t)
	script := filepath.Join(suite.env.repoRoot, "e2e", "testbed", "apiserver.sh")
	bed := testbedDir(t)
	n := faultClaimCount(t)
	r := newFaultRun(t, "apiserver", n)
	// The default Lease timings (15 s / 10 s / 2 s): a restart shorter than the renew deadline
	// must not cost the leadership.
	p := r.start(t, true, "--leader-election-lease-duration=15s", "--leader-election-renew-deadline=10s", "--leader-election-retry-period=2s")
	pid := p.cmd.Process.Pid
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

	f := faultFigures{name: "kube-apiserver restarted during provisioning", claims: n}
	created := r.createClaimsPaced(t, r.class.Name, 0, n, 6*time.Second)
	f.note("%d PVs when the API server was stopped", r.waitVolumeCount(t, max(1, n/5), false, faultSettleTimeout))
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
	f.note("API server unavailable %s", back.Sub(down).Round(100*time.Millisecond))
	if err := created(); err != nil {
		t.Fatal(err)
	}
	r.waitAllBound(t, r.class.Name, n, faultSettleTimeout)
	f.recovery = time.Since(back)
	r.checkProvisioned(t, &f, r.class.Name, defaultExportDirs())
	f.panics = r.countPanics(t)
	assertRunning(t, &f, p, pid)
	// The suite's shared provisioner (default Lease timings too) rode it out as well.
	if !suite.provisioner.running() {
		f.restarts++
		t.Errorf("the suite's shared provisioner exited during the API server restart: %v", suite.provisioner.exitErr)
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
		assertRunning(t, &d, p, pid)
		d.report(t)
	})
}
