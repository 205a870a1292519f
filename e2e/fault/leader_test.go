//go:build e2e

package fault

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nfs-subdir/provisioner/e2e/framework"

	"k8s.io/client-go/tools/leaderelection"
)

// TestFaultLeaderKilled runs two replicas with leader election and SIGKILLs the leader during a
// burst of claims: the other takes over within the Lease duration, and no claim is provisioned
// twice (one directory and one PV per claim).
func TestFaultLeaderKilled(t *testing.T) {
	n := faultClaimCount(t)
	r := newFaultRun(t, "leader", n)
	first := r.Start(t, true)
	framework.Poll(t, "one replica to become leader", time.Minute, func(context.Context) (bool, error) {
		return first.IsLeader(), nil
	})
	second := r.Start(t, true)
	secondPid := second.Cmd.Process.Pid

	f := faultFigures{name: "leader SIGKILLed during provisioning, standby takes over", claims: n}
	created := r.createClaimsPaced(t, r.Class.Name, 0, n, 6*time.Second)
	f.note("%d PVs when the leader was killed", r.waitVolumeCount(t, max(1, n/5), false, faultSettleTimeout))
	if second.IsLeader() {
		t.Fatalf("the standby replica logged that it became leader while the leader was alive")
	}
	first.Kill(t)
	killed := time.Now()
	var takeover time.Duration
	framework.Poll(t, "the standby replica to become leader", time.Minute, func(context.Context) (bool, error) {
		if !second.Running() {
			return false, fmt.Errorf("the standby exited: %v", second.ExitErr)
		}
		takeover = time.Since(killed)
		return second.IsLeader(), nil
	})
	// The standby counts the Lease duration from when it saw the last renewal, which it may see
	// up to one jittered retry period (client-go waits RetryPeriod × [1, 1+JitterFactor]) late,
	// and it tries again one jittered retry period apart; the log is polled.
	jitteredRetry := time.Duration((1 + leaderelection.JitterFactor) * float64(framework.RetryPeriod))
	if limit := framework.LeaseDuration + 2*jitteredRetry + 2*framework.PollInterval; takeover > limit {
		t.Errorf("takeover took %s, want within %s (lease duration %s)", takeover, limit, framework.LeaseDuration)
	}
	f.note("takeover %s with a %s Lease", takeover.Round(10*time.Millisecond), framework.LeaseDuration)
	if err := created(); err != nil {
		t.Fatal(err)
	}
	r.waitAllBound(t, r.Class.Name, n, faultSettleTimeout)
	f.recovery = time.Since(killed)
	r.checkProvisioned(t, &f, r.Class.Name, fw.DefaultExport())
	f.panics = r.CountPanics(t)
	assertRunning(t, &f, second, secondPid)
	f.report(t)

	t.Run("the new leader deletes", func(t *testing.T) {
		d := faultFigures{name: "deletion by the new leader", claims: n}
		deleted := r.deleteClaimsPaced(t, claimNames(0, n), time.Second)
		if err := deleted(); err != nil {
			t.Fatal(err)
		}
		d.recovery = r.waitAllVolumesGone(t, faultSettleTimeout)
		r.checkDeleted(t, &d, fw.DefaultExport())
		if d.archived != n {
			t.Errorf("%d archived directories, want %d", d.archived, n)
		}
		d.panics = r.CountPanics(t)
		assertRunning(t, &d, second, secondPid)
		d.report(t)
	})
}
