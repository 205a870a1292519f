//go:build e2e

package fault

import (
	"syscall"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// TestFaultNFSServerKilled SIGKILLs NFS-Ganesha while a burst of claims is being provisioned, and
// again while they are being deleted, and starts it again each time: every claim ends Bound
// (every PV gone), no orphan directory, no duplicate PV, no panic, the provisioner never restarts.
func TestFaultNFSServerKilled(t *testing.T) {
	guardOtherE2E(t)
	r := newFaultRun(t, "nfskill", faultClaimCount(t))
	restoreNFSOnCleanup(t)
	g := testbedGanesha(t)
	p := r.Start(t, true)
	ctx := framework.Context(t)

	var killed time.Time
	kill := func(failures string) func(t *testing.T, f *faultFigures) {
		return func(t *testing.T, f *faultFigures) {
			base, err := p.Metric(ctx, failures, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.waitBurstUnderway(t, f, phaseOf(failures), "the server was killed")
			g.signal(t, syscall.SIGKILL)
			killed = time.Now()
			// The fault is in effect once the provisioner has seen a call fail.
			waitMetricAbove(t, p, failures, base, 2*time.Minute)
		}
	}
	restart := func(t *testing.T, f *faultFigures) *framework.Process {
		if output, err := runCommand(ctx, fw.Env.NFSStartCommand); err != nil {
			t.Fatalf("starting the NFS server: %v\n%s", err, output)
		}
		f.note("server down %s", time.Since(killed).Round(100*time.Millisecond))
		return p
	}
	r.run(t,
		scenario{name: "NFS server SIGKILLed and restarted during provisioning", phase: provisioning, span: 4 * time.Second,
			inject: kill(metricProvisionFailed), restore: restart},
		scenario{name: "NFS server SIGKILLed and restarted during deletion", phase: deletion, span: 4 * time.Second,
			inject: kill(metricDeleteFailed), restore: restart},
	)
}

// phaseOf is the phase whose failures a failure counter counts.
func phaseOf(failures string) phase {
	if failures == metricDeleteFailed {
		return deletion
	}
	return provisioning
}
