//go:build e2e

package fault

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/client-go/tools/leaderelection"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// TestFaultLeaderKilled runs two replicas with leader election and SIGKILLs the leader during a
// burst of claims: the other takes over within the Lease duration, and no claim is provisioned
// twice (one directory and one PV per claim); the new leader then deletes them all.
func TestFaultLeaderKilled(t *testing.T) {
	r := newFaultRun(t, "leader", faultClaimCount(t))
	first := r.Start(t, true)
	framework.Poll(t, "one replica to become leader", time.Minute, func(context.Context) (bool, error) {
		return first.IsLeader(), nil
	})
	second := r.Start(t, true)

	var killed time.Time
	killLeader := func(t *testing.T, f *faultFigures) {
		r.waitBurstUnderway(t, f, provisioning, "the leader was killed")
		if second.IsLeader() {
			t.Fatalf("the standby replica logged that it became leader while the leader was alive")
		}
		first.Kill(t)
		killed = time.Now()
	}
	takeOver := func(t *testing.T, f *faultFigures) *framework.Process {
		var takeover time.Duration
		framework.Poll(t, "the standby replica to become leader", time.Minute, func(context.Context) (bool, error) {
			if !second.Running() {
				return false, fmt.Errorf("the standby exited: %v", second.ExitErr)
			}
			takeover = time.Since(killed)
			return second.IsLeader(), nil
		})
		// The standby counts the Lease duration from when it saw the last renewal, which it may
		// see up to one jittered retry period (client-go waits RetryPeriod × [1, 1+JitterFactor])
		// late, and it tries again one jittered retry period apart; the log is polled.
		jitteredRetry := time.Duration((1 + leaderelection.JitterFactor) * float64(framework.RetryPeriod))
		if limit := framework.LeaseDuration + 2*jitteredRetry + 2*framework.PollInterval; takeover > limit {
			t.Errorf("takeover took %s, want within %s (lease duration %s)", takeover, limit, framework.LeaseDuration)
		}
		f.note("takeover %s with a %s Lease", takeover.Round(10*time.Millisecond), framework.LeaseDuration)
		return second
	}
	r.run(t,
		scenario{name: "leader SIGKILLed during provisioning, standby takes over", phase: provisioning, span: 6 * time.Second,
			inject: killLeader, restore: takeOver},
		scenario{name: "deletion by the new leader", phase: deletion, span: time.Second,
			restore: func(*testing.T, *faultFigures) *framework.Process { return second }},
	)
}
