//go:build e2e

package fault

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nfs-subdir/provisioner/e2e/framework"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// faultKills is how many times the provisioner is SIGKILLed during each burst.
const faultKills = 4

// TestFaultProvisionerKilled SIGKILLs the provisioner at random points of a burst of claims (and
// of their deletion), starting a new process after each kill as a Deployment would: it converges
// with no duplicate PV, no leaked directory and no claim left Pending (no PV left behind).
//
// The burst arrives first; each process is then killed right after a random number of PVs it
// created (deleted), with the rest of its workers in the middle of their NFS calls and API
// writes. The next process waits for the killed one's Lease to expire, as a new pod would.
func TestFaultProvisionerKilled(t *testing.T) {
	n := faultClaimCount(t)
	r := newFaultRun(t, "provkill", n)

	// killDuring starts faultKills processes in turn, killing each after k volume events of type
	// eventType in the case's namespace (k random, so every process does part of the remaining
	// work), then starts the last one. It returns it, when it started, and how many kills hit
	// while work was left (pending counts it).
	killDuring := func(t *testing.T, eventType watch.EventType, pending func(ctx context.Context) (int, error)) (*framework.Process, time.Time, int, int) {
		t.Helper()
		ctx := framework.Context(t)
		kills, midBurst := 0, 0
		for i := 0; i < faultKills; i++ {
			left, err := pending(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if left == 0 {
				break // the earlier processes finished the burst between their kill and the event
			}
			k := 1 + rand.IntN(max(1, left/(faultKills-i+1)))
			list, err := fw.Cluster.Clientset.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			watcher, err := fw.Cluster.Clientset.CoreV1().PersistentVolumes().Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
			if err != nil {
				t.Fatal(err)
			}
			p := r.Start(t, false)
			seen := 0
			timeout := time.NewTimer(2 * time.Minute)
			for seen < k {
				select {
				case event, ok := <-watcher.ResultChan():
					if !ok {
						t.Fatalf("the PV watch ended")
					}
					volume, isVolume := event.Object.(*corev1.PersistentVolume)
					if isVolume && event.Type == eventType && volume.Spec.ClaimRef != nil && volume.Spec.ClaimRef.Namespace == r.Namespace {
						seen++
					}
				case <-timeout.C:
					t.Fatalf("process %d: %d of %d PV events (%s) in 2 minutes", i, seen, k, eventType)
				}
			}
			p.Kill(t)
			kills++
			timeout.Stop()
			watcher.Stop()
			after, err := pending(ctx)
			if err == nil && after > 0 {
				midBurst++
			}
			t.Logf("process %d: %d pending at its start, killed after %d PV events, %d pending after the kill", i, left, k, after)
		}
		return r.Start(t, false), time.Now(), kills, midBurst
	}

	f := faultFigures{name: "provisioner SIGKILLed during provisioning", claims: n}
	t.Run("provisioning", func(t *testing.T) {
		if err := r.createClaimsPaced(t, r.Class.Name, 0, n, time.Second)(); err != nil {
			t.Fatal(err)
		}
		last, lastStart, kills, midBurst := killDuring(t, watch.Added, func(ctx context.Context) (int, error) {
			volumes, err := r.listVolumes(ctx)
			return n - len(volumes), err
		})
		r.waitAllBound(t, r.Class.Name, n, faultSettleTimeout)
		f.recovery = time.Since(lastStart)
		f.note("%d kills, %d with claims still waiting for a PV; recovery counted from the last start, Lease wait included", kills, midBurst)
		if midBurst == 0 {
			t.Errorf("no kill landed while claims were waiting for a PV; the case tested nothing")
		}
		r.checkProvisioned(t, &f, r.Class.Name, fw.DefaultExport())
		f.panics = r.CountPanics(t)
		if !last.Running() {
			f.restarts++
		}
		f.report(t)
		if err := last.Stop(); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		return
	}

	d := faultFigures{name: "provisioner SIGKILLed during deletion", claims: n}
	t.Run("deletion", func(t *testing.T) {
		if err := r.deleteClaimsPaced(t, claimNames(0, n), time.Second)(); err != nil {
			t.Fatal(err)
		}
		last, lastStart, kills, midBurst := killDuring(t, watch.Deleted, func(ctx context.Context) (int, error) {
			volumes, err := r.listVolumes(ctx)
			return len(volumes), err
		})
		r.waitAllVolumesGone(t, faultSettleTimeout)
		d.recovery = time.Since(lastStart)
		d.note("%d kills, %d with released PVs still to delete; recovery counted from the last start, Lease wait included", kills, midBurst)
		if midBurst == 0 {
			t.Errorf("no kill landed while PVs were waiting for deletion; the case tested nothing")
		}
		r.checkDeleted(t, &d, fw.DefaultExport())
		if d.archived != n {
			t.Errorf("%d archived directories, want %d (one per claim)", d.archived, n)
		}
		d.panics = r.CountPanics(t)
		if !last.Running() {
			d.restarts++
		}
		d.report(t)
	})
}
