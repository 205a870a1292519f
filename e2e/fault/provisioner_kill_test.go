//go:build e2e

package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"

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
	// work), then starts the last one. It returns it and how many kills hit while work was left
	// (pending counts it).
	killDuring := func(t *testing.T, eventType watch.EventType, pending func(ctx context.Context) (int, error)) (*framework.Process, int, int) {
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
		return r.Start(t, false), kills, midBurst
	}

	// killRow is a row whose fault is killDuring; recovery counts from the last start, Lease wait
	// included. Before its burst, a row stops the previous row's last process (stopLast), so that
	// each row's kills hit processes that do that row's work.
	var last *framework.Process
	stopLast := func(t *testing.T) {
		if last != nil {
			if err := last.Stop(); err != nil {
				t.Error(err)
			}
		}
	}
	killRow := func(eventType watch.EventType, pending func(ctx context.Context) (int, error), waiting string) func(*testing.T, *faultFigures) *framework.Process {
		return func(t *testing.T, f *faultFigures) *framework.Process {
			var kills, midBurst int
			last, kills, midBurst = killDuring(t, eventType, pending)
			f.note("%d kills, %d with %s; recovery counted from the last start, Lease wait included", kills, midBurst, waiting)
			if midBurst == 0 {
				t.Errorf("no kill landed while %s; the case tested nothing", waiting)
			}
			return last
		}
	}
	// The burst arrives first: every claim exists (or is gone) before the first process starts.
	arrived := func(want int) func(*testing.T, *faultFigures) {
		return func(t *testing.T, _ *faultFigures) {
			framework.Poll(t, fmt.Sprintf("%d claims of the burst", want), time.Minute, func(ctx context.Context) (bool, error) {
				claims, err := r.listClaims(ctx, r.Class.Name)
				return err == nil && len(claims) == want, err
			})
		}
	}
	r.run(t,
		scenario{name: "provisioner SIGKILLed during provisioning", phase: provisioning, span: time.Second, inject: arrived(n),
			restore: killRow(watch.Added, func(ctx context.Context) (int, error) {
				volumes, err := r.listVolumes(ctx)
				return n - len(volumes), err
			}, "claims still waiting for a PV")},
		scenario{name: "provisioner SIGKILLed during deletion", phase: deletion, span: time.Second, setup: stopLast, inject: arrived(0),
			restore: killRow(watch.Deleted, func(ctx context.Context) (int, error) {
				volumes, err := r.listVolumes(ctx)
				return len(volumes), err
			}, "released PVs still to delete")},
	)
}
