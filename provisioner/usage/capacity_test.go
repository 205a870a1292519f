package usage_test

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/internal/provtest"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/usage"
)

// A class that checks capacity refuses a claim its export cannot hold,
// with the numbers; one it can hold is provisioned.
func TestCapacityCheck(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	checking := provtest.Class(map[string]string{"checkAvailable": "true"})
	huge := provtest.Claim(nil)
	huge.Spec.Resources.Requests[v1.ResourceStorage] = resource.MustParse("1Ei")
	_, state, err := f.Prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: checking, PVName: "pvc-huge", PVC: huge})
	if err == nil || state != controller.ProvisioningFinished || !strings.Contains(err.Error(), "bytes available") || !strings.Contains(err.Error(), "1Ei") {
		t.Errorf("a claim of 1Ei: %v (%s), want a refusal with the numbers", err, state)
	}
	if got := f.Entries(f.Dir); len(got) != 0 {
		t.Errorf("directories made for a refused claim: %v", got)
	}
	if _, _, err := f.Prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: checking, PVName: "pvc-small", PVC: provtest.Claim(nil)}); err != nil {
		t.Errorf("a claim of 100Mi: %v", err)
	}
	// The headroom is kept free: asking for all but less than it is refused.
	headroom := provtest.Class(map[string]string{"availableHeadroom": "1Ei"})
	if _, _, err := f.Prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: headroom, PVName: "pvc-h", PVC: provtest.Claim(nil)}); err == nil {
		t.Error("a claim beyond available minus the headroom was provisioned")
	}
	for _, bad := range []map[string]string{{"checkAvailable": "maybe"}, {"availableHeadroom": "-1Gi"}, {"availableHeadroom": "lots"}} {
		if _, err := class.Parse(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

type capacityLog struct{ seen chan string }

func (c *capacityLog) RemovedEntries(string, uint64, uint64)               {}
func (c *capacityLog) ArchivesSwept(map[string]int, map[string]int)        {}
func (*capacityLog) ClonesRunning(int)                                     {}
func (*capacityLog) CloneCopied(string, uint64)                            {}
func (*capacityLog) CloneEnded(time.Duration, error)                       {}
func (c *capacityLog) VolumeUsage([]usage.VolumeUsage, time.Duration, int) {}
func (c *capacityLog) ExportCapacity(server, share string, cap export.Capacity) {
	if cap.SizeBytes > 0 {
		c.seen <- server + ":" + share
	}
}

// The monitor reads every export in use: the default and the classes'.
func TestMonitorExports(t *testing.T) {
	log := &capacityLog{seen: make(chan string, 10)}
	f := provtest.New(t, provtest.Options{Observe: log})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go f.Monitor.Run(ctx, time.Hour)
	select {
	case got := <-log.seen:
		if got != provtest.Server+":"+provtest.Share {
			t.Errorf("read %s, want the default export", got)
		}
	case <-ctx.Done():
		t.Fatal("the default export's capacity was never read")
	}
}
