//go:build e2e

package e2e

import (
	"syscall"
	"testing"
	"time"
)

// TestFaultNFSServerKilled SIGKILLs NFS-Ganesha while a burst of claims is being provisioned, and
// again while they are being deleted, and starts it again each time: every claim ends Bound
// (every PV gone), no orphan directory, no duplicate PV, no panic, the provisioner never restarts.
func TestFaultNFSServerKilled(t *testing.T) {
	guardOtherE2E(t)
	n := faultClaimCount(t)
	r := newFaultRun(t, "nfskill", n)
	restoreNFSOnCleanup(t)
	g := testbedGanesha(t)
	p := r.start(t, true)
	pid := p.cmd.Process.Pid
	ctx := testContext(t)

	f := faultFigures{name: "NFS server SIGKILLed and restarted during provisioning", claims: n}
	t.Run("provisioning", func(t *testing.T) {
		baseFailed, err := p.metric(ctx, metricProvisionFailed)
		if err != nil {
			t.Fatal(err)
		}
		created := r.createClaimsPaced(t, r.class.Name, 0, n, 4*time.Second)
		f.note("%d PVs when the server was killed", r.waitVolumeCount(t, max(1, n/5), false, faultSettleTimeout))
		g.signal(t, syscall.SIGKILL)
		killedAt := time.Now()
		// The fault is in effect once the provisioner has seen provisioning fail.
		p.waitMetricAbove(t, metricProvisionFailed, baseFailed, 2*time.Minute)
		if output, err := runCommand(ctx, suite.env.nfsStartCommand); err != nil {
			t.Fatalf("starting the NFS server: %v\n%s", err, output)
		}
		f.note("server down %s", time.Since(killedAt).Round(100*time.Millisecond))
		restarted := time.Now()
		if err := created(); err != nil {
			t.Fatal(err)
		}
		r.waitAllBound(t, r.class.Name, n, faultSettleTimeout)
		f.recovery = time.Since(restarted)
		r.checkProvisioned(t, &f, r.class.Name, defaultExportDirs())
		f.panics = r.countPanics(t)
		assertRunning(t, &f, p, pid)
		f.report(t)
	})
	if t.Failed() {
		return
	}

	d := faultFigures{name: "NFS server SIGKILLed and restarted during deletion", claims: n}
	t.Run("deletion", func(t *testing.T) {
		baseFailed, err := p.metric(ctx, metricDeleteFailed)
		if err != nil {
			t.Fatal(err)
		}
		deleted := r.deleteClaimsPaced(t, claimNames(0, n), 4*time.Second)
		d.note("%d PVs left when the server was killed", r.waitVolumeCount(t, n-max(1, n/5), true, faultSettleTimeout))
		g.signal(t, syscall.SIGKILL)
		killedAt := time.Now()
		p.waitMetricAbove(t, metricDeleteFailed, baseFailed, 2*time.Minute)
		if output, err := runCommand(ctx, suite.env.nfsStartCommand); err != nil {
			t.Fatalf("starting the NFS server: %v\n%s", err, output)
		}
		d.note("server down %s", time.Since(killedAt).Round(100*time.Millisecond))
		restarted := time.Now()
		if err := deleted(); err != nil {
			t.Fatal(err)
		}
		r.waitAllVolumesGone(t, faultSettleTimeout)
		d.recovery = time.Since(restarted)
		r.checkDeleted(t, &d, defaultExportDirs())
		if d.archived != n {
			t.Errorf("%d archived directories, want %d (one per claim: none lost, none archived twice)", d.archived, n)
		}
		d.panics = r.countPanics(t)
		assertRunning(t, &d, p, pid)
		d.report(t)
	})
}
