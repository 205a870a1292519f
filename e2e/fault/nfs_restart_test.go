//go:build e2e

package fault

import (
	"syscall"
	"testing"
	"time"

	"github.com/nfs-subdir/provisioner/e2e/framework"
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
	p := r.Start(t, true)
	pid := p.Cmd.Process.Pid
	ctx := framework.Context(t)

	f := faultFigures{name: "NFS server SIGKILLed and restarted during provisioning", claims: n}
	t.Run("provisioning", func(t *testing.T) {
		baseFailed, err := p.Metric(ctx, metricProvisionFailed, nil)
		if err != nil {
			t.Fatal(err)
		}
		created := r.createClaimsPaced(t, r.Class.Name, 0, n, 4*time.Second)
		f.note("%d PVs when the server was killed", r.waitVolumeCount(t, max(1, n/5), false, faultSettleTimeout))
		g.signal(t, syscall.SIGKILL)
		killedAt := time.Now()
		// The fault is in effect once the provisioner has seen provisioning fail.
		waitMetricAbove(t, p, metricProvisionFailed, baseFailed, 2*time.Minute)
		if output, err := runCommand(ctx, fw.Env.NFSStartCommand); err != nil {
			t.Fatalf("starting the NFS server: %v\n%s", err, output)
		}
		f.note("server down %s", time.Since(killedAt).Round(100*time.Millisecond))
		restarted := time.Now()
		if err := created(); err != nil {
			t.Fatal(err)
		}
		r.waitAllBound(t, r.Class.Name, n, faultSettleTimeout)
		f.recovery = time.Since(restarted)
		r.checkProvisioned(t, &f, r.Class.Name, fw.DefaultExport())
		f.panics = r.CountPanics(t)
		assertRunning(t, &f, p, pid)
		f.report(t)
	})
	if t.Failed() {
		return
	}

	d := faultFigures{name: "NFS server SIGKILLed and restarted during deletion", claims: n}
	t.Run("deletion", func(t *testing.T) {
		baseFailed, err := p.Metric(ctx, metricDeleteFailed, nil)
		if err != nil {
			t.Fatal(err)
		}
		deleted := r.deleteClaimsPaced(t, claimNames(0, n), 4*time.Second)
		d.note("%d PVs left when the server was killed", r.waitVolumeCount(t, n-max(1, n/5), true, faultSettleTimeout))
		g.signal(t, syscall.SIGKILL)
		killedAt := time.Now()
		waitMetricAbove(t, p, metricDeleteFailed, baseFailed, 2*time.Minute)
		if output, err := runCommand(ctx, fw.Env.NFSStartCommand); err != nil {
			t.Fatalf("starting the NFS server: %v\n%s", err, output)
		}
		d.note("server down %s", time.Since(killedAt).Round(100*time.Millisecond))
		restarted := time.Now()
		if err := deleted(); err != nil {
			t.Fatal(err)
		}
		r.waitAllVolumesGone(t, faultSettleTimeout)
		d.recovery = time.Since(restarted)
		r.checkDeleted(t, &d, fw.DefaultExport())
		if d.archived != n {
			t.Errorf("%d archived directories, want %d (one per claim: none lost, none archived twice)", d.archived, n)
		}
		d.panics = r.CountPanics(t)
		assertRunning(t, &d, p, pid)
		d.report(t)
	})
}
