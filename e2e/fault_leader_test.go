//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/client-go/tools/leaderelection"
)

// TestFaultLeaderKilled runs two replicas with leader election and SIGKILLs the leader during a
// burst of claims: the other takes over within the Lease duration, and no claim is provisioned
// twice (one directory and one PV per claim).
func TestFaultLeaderKilled(t *testing.T) {
	n := faultClaimCount(t)
	r := newFaultRun(t, "leader", n)
	first := r.start(t, true)
	poll(t, "one replica to become leader", time.Minute, func(context.Context) (bool, error) {
		return first.isLeader(), nil
	})
	second := r.start(t, true)
	secondPid := second.cmd.Process.Pid

	f := faultFigures{name: "leader SIGKILLed during provisioning, standby takes over", claims: n}
	created := r.createClaimsPaced(t, r.class.Name, 0, n, 6*time.Second)
	f.note("%d PVs when the leader was killed", r.waitVolumeCount(t, max(1, n/5), false, faultSettleTimeout))
	if second.isLeader() {
		t.Fatalf("the standby replica logged that it became leader while the leader was alive")
	}
	first.kill(t)
	killed := time.Now()
	var takeover time.Duration
	poll(t, "the standby replica to become leader", time.Minute, func(context.Context) (bool, error) {
		if !second.running() {
			return false, fmt.Errorf("the standby exited: %v", second.exitErr)
		}
		takeover = time.Since(killed)
		return second.isLeader(), nil
	})
	// The standby counts the Lease duration from when it saw the last renewal, which it may see
	// up to one jittered retry period (client-go waits RetryPeriod × [1, 1+JitterFactor]) late,
	// and it tries again one jittered retry period apart; the log is polled.
	jitteredRetry := time.Duration((1 + leaderelection.JitterFactor) * float64(faultRetryPeriod))
	if limit := faultLeaseDuration + 2*jitteredRetry + 2*pollInterval; takeover > limit {
		t.Errorf("takeover took %s, want within %s (lease duration %s)", takeover, limit, faultLeaseDuration)
	}
	f.note("takeover %s with a %s Lease", takeover.Round(10*time.Millisecond), faultLeaseDuration)
	if err := created(); err != nil {
		t.Fatal(err)
	}
	r.waitAllBound(t, r.class.Name, n, faultSettleTimeout)
	f.recovery = time.Since(killed)
	r.checkProvisioned(t, &f, r.class.Name, defaultExportDirs())
	f.panics = r.countPanics(t)
	assertRunning(t, &f, second, secondPid)
	f.report(t)

	t.Run("the new leader deletes", func(t *testing.T) {
		d := faultFigures{name: "deletion by the new leader", claims: n}
		deleted := r.deleteClaimsPaced(t, claimNames(0, n), time.Second)
		if err := deleted(); err != nil {
			t.Fatal(err)
		}
		d.recovery = r.waitAllVolumesGone(t, faultSettleTimeout)
		r.checkDeleted(t, &d, defaultExportDirs())
		if d.archived != n {
			t.Errorf("%d archived directories, want %d", d.archived, n)
		}
		d.panics = r.countPanics(t)
		assertRunning(t, &d, second, secondPid)
		d.report(t)
	})
}
