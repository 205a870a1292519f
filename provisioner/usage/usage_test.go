package usage_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/internal/provtest"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/usage"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

type usageLog struct {
	last   []usage.VolumeUsage
	failed int
}

func (u *usageLog) RemovedEntries(string, uint64, uint64)          {}
func (u *usageLog) ArchivesSwept(map[string]int, map[string]int)   {}
func (*usageLog) ClonesRunning(int)                                {}
func (*usageLog) CloneCopied(string, uint64)                       {}
func (*usageLog) CloneEnded(time.Duration, error)                  {}
func (u *usageLog) ExportCapacity(string, string, export.Capacity) {}
func (u *usageLog) VolumeUsage(v []usage.VolumeUsage, _ time.Duration, failed int) {
	u.last, u.failed = v, failed
}

// The scanner reports each volume's usage with kubelet's labels, and warns
// once per crossing when a volume holds more than its claim requested.
func TestUsageScan(t *testing.T) {
	log := &usageLog{}
	f := provtest.New(t, provtest.Options{Name: "test/provisioner", Observe: log})
	pv, _, err := f.Prov.Provision(context.Background(), provisionOpts(provtest.ClaimIn("team", "data", nil), "pvc-u"))
	if err != nil {
		t.Fatal(err)
	}
	pv.Annotations[volume.AnnProvisionedBy] = "test/provisioner"
	pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: "team", Name: "data", UID: "uid-1"}
	pv.Spec.Capacity[v1.ResourceStorage] = resource.MustParse("1Mi")
	f.PVs.Add(pv)
	dir := filepath.Join(f.Dir, pv.Annotations[volume.AnnDirectory])
	if err := os.WriteFile(filepath.Join(dir, "small"), make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	s := f.Monitor
	f.Events()
	s.Scan(context.Background())
	if len(log.last) != 1 || log.last[0].Namespace != "team" || log.last[0].Claim != "data" || log.last[0].PV != "pvc-u" {
		t.Fatalf("scan results %+v", log.last)
	}
	if u := log.last[0].Used; u.Inodes != 2 || u.Bytes < 64<<10 {
		t.Errorf("usage %+v, want 2 entries and at least 64 KiB", u)
	}
	if ev := f.Events(); strings.Contains(ev, usage.ReasonUsageExceedsRequest) {
		t.Errorf("warned below the request: %s", ev)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Scan(context.Background())
	if ev := f.Events(); !strings.Contains(ev, usage.ReasonUsageExceedsRequest) || !strings.Contains(ev, "does not enforce") {
		t.Errorf("no warning above the request: %q", ev)
	}
	s.Scan(context.Background())
	if ev := f.Events(); strings.Contains(ev, usage.ReasonUsageExceedsRequest) {
		t.Errorf("warned again on the next scan: %s", ev)
	}
	os.Remove(big)
	s.Scan(context.Background())
	os.WriteFile(big, make([]byte, 2<<20), 0o644)
	s.Scan(context.Background())
	if ev := f.Events(); !strings.Contains(ev, usage.ReasonUsageExceedsRequest) {
		t.Errorf("no warning on the second crossing: %q", ev)
	}
}

func provisionOpts(claim *v1.PersistentVolumeClaim, pv string) controller.ProvisionOptions {
	return controller.ProvisionOptions{StorageClass: provtest.Class(nil), PVName: pv, PVC: claim}
}

// A tenant's tree the walk cannot finish (deeper than the backend walks) fails that volume's
// scan only: it is not the server failing, so the gate stays open for every other tenant of the
// server, and the rest of the scan goes on.
func TestUsageScanTreeFailureIsNotTheServers(t *testing.T) {
	log := &usageLog{}
	f := provtest.New(t, provtest.Options{Name: "test/provisioner", Observe: log})
	var deep *v1.PersistentVolume
	for i, name := range []string{"deep", "fine"} {
		pv, _, err := f.Prov.Provision(context.Background(), provisionOpts(provtest.ClaimIn("team", name, nil), "pvc-"+name))
		if err != nil {
			t.Fatal(err)
		}
		pv.Annotations[volume.AnnProvisionedBy] = "test/provisioner"
		pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: "team", Name: name, UID: types.UID(fmt.Sprint("uid-", i))}
		f.PVs.Add(pv)
		if name == "deep" {
			deep = pv
		}
	}
	p := filepath.Join(f.Dir, deep.Annotations[volume.AnnDirectory])
	for i := 0; i < 140; i++ {
		p = filepath.Join(p, "d")
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	f.Monitor.Scan(context.Background())
	if log.failed != 1 || len(log.last) != 1 || log.last[0].Claim != "fine" {
		t.Fatalf("scan: %d failed, results %+v; want the deep one failed and the other measured", log.failed, log.last)
	}
	if !f.Gate.Healthy(provtest.Server) {
		t.Fatal("one tenant's deep tree counted as the server not answering")
	}
	if _, _, err := f.Prov.Provision(context.Background(), provisionOpts(provtest.ClaimIn("other", "data", nil), "pvc-other")); err != nil {
		t.Errorf("another tenant's claim after the scan: %v", err)
	}
}

// What the monitor remembers of volumes follows the volumes there are.
func TestUsageScanForgetsDeletedVolumes(t *testing.T) {
	log := &usageLog{}
	f := provtest.New(t, provtest.Options{Name: "test/provisioner", Observe: log})
	var pvs []*v1.PersistentVolume
	for i := 0; i < 3; i++ {
		name := fmt.Sprint("v", i)
		pv, _, err := f.Prov.Provision(context.Background(), provisionOpts(provtest.ClaimIn("team", name, nil), "pvc-"+name))
		if err != nil {
			t.Fatal(err)
		}
		pv.Annotations[volume.AnnProvisionedBy] = "test/provisioner"
		pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: "team", Name: name, UID: types.UID(name)}
		f.PVs.Add(pv)
		pvs = append(pvs, pv)
	}
	f.Monitor.Scan(context.Background())
	if n := f.Monitor.Remembered(); n != 3 {
		t.Fatalf("remembers %d volumes, want 3", n)
	}
	for _, pv := range pvs[:2] {
		f.PVs.Delete(pv)
	}
	f.Monitor.Scan(context.Background())
	if n := f.Monitor.Remembered(); n != 1 {
		t.Errorf("after two volumes were deleted it remembers %d, want 1", n)
	}
}
