//go:build e2e

package fault

import (
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// phase is what a burst does to a case's claims.
type phase int

const (
	provisioning phase = iota // create claims 0..n-1 on the case's class
	deletion                  // delete them
)

func (p phase) String() string {
	if p == provisioning {
		return "provisioning"
	}
	return "deletion"
}

// scenario is one row of a fault case: a burst of the case's claims driven through one fault.
// The runner starts the burst, calls inject (which brings the fault about and returns once the
// provisioner shows it: a failed call counted, a leader gone), then restore (which ends it and
// returns the process that must still run at the end, nil for none to check), waits for the
// burst to converge, and checks and reports the figures. Recovery counts from restore's return.
type scenario struct {
	name    string
	phase   phase
	span    time.Duration      // the burst is spread over span
	setup   func(t *testing.T) // optional: before the burst starts
	inject  func(t *testing.T, f *faultFigures)
	restore func(t *testing.T, f *faultFigures) *framework.Process
	// converge, when set, replaces waiting for every claim Bound (every PV gone): the API server
	// case restarts a process that ended on a lost Lease while it waits.
	converge func(t *testing.T, f *faultFigures)
}

// run runs the scenarios in order, each a subtest named by its phase; it stops at the first that
// fails (the next burst would start from a state the case did not mean).
func (r *faultRun) run(t *testing.T, scenarios ...scenario) {
	t.Helper()
	for _, s := range scenarios {
		if !t.Run(s.phase.String(), func(t *testing.T) { r.runScenario(t, s) }) {
			return
		}
	}
}

func (r *faultRun) runScenario(t *testing.T, s scenario) {
	t.Helper()
	f := faultFigures{name: s.name, claims: r.claims}
	if s.setup != nil {
		s.setup(t)
	}
	var burst func() error
	if s.phase == provisioning {
		burst = r.createClaimsPaced(t, r.Class.Name, 0, r.claims, s.span)
	} else {
		burst = r.deleteClaimsPaced(t, claimNames(0, r.claims), s.span)
	}
	if s.inject != nil {
		s.inject(t, &f)
	}
	survivor := s.restore(t, &f)
	restored := time.Now()
	if err := burst(); err != nil {
		t.Fatal(err)
	}
	switch {
	case s.converge != nil:
		s.converge(t, &f)
	case s.phase == provisioning:
		r.waitAllBound(t, r.Class.Name, r.claims, faultSettleTimeout)
	default:
		r.waitAllVolumesGone(t, faultSettleTimeout)
	}
	f.recovery = time.Since(restored)
	if s.phase == provisioning {
		r.checkProvisioned(t, &f, r.Class.Name, fw.DefaultExport())
	} else {
		r.checkDeleted(t, &f, fw.DefaultExport())
		if f.archived != r.claims {
			t.Errorf("%d archived directories, want %d (one per claim: none lost, none archived twice)", f.archived, r.claims)
		}
	}
	f.panics = r.CountPanics(t)
	if survivor != nil && !survivor.Running() {
		f.restarts++
		t.Errorf("provisioner %d exited during the fault (%v); want it to ride the fault out", survivor.Pid(), survivor.ExitErr)
	}
	f.report(t)
}

// waitBurstUnderway returns once a fifth of the burst is done (that many PVs made, or that many
// gone), so the fault lands in its middle, and notes how far it got.
func (r *faultRun) waitBurstUnderway(t *testing.T, f *faultFigures, p phase, what string) {
	t.Helper()
	step := max(1, r.claims/5)
	if p == provisioning {
		f.note("%d PVs when %s", r.waitVolumeCount(t, step, false, faultSettleTimeout), what)
	} else {
		f.note("%d PVs left when %s", r.waitVolumeCount(t, r.claims-step, true, faultSettleTimeout), what)
	}
}
