package provisioner

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// A class that checks capacity refuses a claim its export cannot hold,
// with the numbers; one it can hold is provisioned.
func TestCapacityCheck(t *testing.T) {
	f := newFixture(t)
	class := newClass(map[string]string{"checkAvailable": "true"})
	huge := newClaim(nil)
	huge.Spec.Resources.Requests[v1.ResourceStorage] = resource.MustParse("1Ei")
	_, state, err := f.prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: class, PVName: "pvc-huge", PVC: huge})
	if err == nil || state != controller.ProvisioningFinished || !strings.Contains(err.Error(), "bytes available") || !strings.Contains(err.Error(), "1Ei") {
		t.Errorf("a claim of 1Ei: %v (%s), want a refusal with the numbers", err, state)
	}
	if got := f.entries(f.dir); len(got) != 0 {
		t.Errorf("directories made for a refused claim: %v", got)
	}
	if _, _, err := f.prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: class, PVName: "pvc-small", PVC: newClaim(nil)}); err != nil {
		t.Errorf("a claim of 100Mi: %v", err)
	}
	// The headroom is kept free: asking for all but less than it is refused.
	headroom := newClass(map[string]string{"availableHeadroom": "1Ei"})
	if _, _, err := f.prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: headroom, PVName: "pvc-h", PVC: newClaim(nil)}); err == nil {
		t.Error("a claim beyond available minus the headroom was provisioned")
	}
	for _, bad := range []map[string]string{{"checkAvailable": "maybe"}, {"availableHeadroom": "-1Gi"}, {"availableHeadroom": "lots"}} {
		if _, err := ParseClassOptions(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

type capacityLog struct{ seen chan string }

func (c *capacityLog) RemovedEntries(string, uint64, uint64)         {}
func (c *capacityLog) ArchivesSwept(map[string]int, map[string]int)  {}
func (*capacityLog) ClonesRunning(int)                               {}
func (*capacityLog) CloneCopied(string, uint64)                      {}
func (*capacityLog) CloneEnded(time.Duration, error)                 {}
func (c *capacityLog) VolumeUsage([]VolumeUsage, time.Duration, int) {}
func (c *capacityLog) ExportCapacity(server, share string, cap export.Capacity) {
	if cap.SizeBytes > 0 {
		c.seen <- server + ":" + share
	}
}

// The monitor reads every export in use: the default and the classes'.
func TestMonitorExports(t *testing.T) {
	f := newFixture(t)
	log := &capacityLog{seen: make(chan string, 10)}
	f.prov.cfg.Observe = log
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go f.prov.Monitor(ctx, time.Hour, nil)
	select {
	case got := <-log.seen:
		if got != testServer+":"+testShare {
			t.Errorf("read %s, want the default export", got)
		}
	case <-ctx.Done():
		t.Fatal("the default export's capacity was never read")
	}
}
