package provisioner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

type usageLog struct {
	last   []VolumeUsage
	failed int
}

func (u *usageLog) RemovedEntries(string, uint64, uint64)          {}
func (u *usageLog) ArchivesSwept(map[string]int, map[string]int)   {}
func (*usageLog) ClonesRunning(int)                                {}
func (*usageLog) CloneCopied(string, uint64)                       {}
func (*usageLog) CloneEnded(time.Duration, error)                  {}
func (u *usageLog) ExportCapacity(string, string, export.Capacity) {}
func (u *usageLog) VolumeUsage(v []VolumeUsage, _ time.Duration, failed int) {
	u.last, u.failed = v, failed
}

func drainEvents(f *fixture) string {
	var out []string
	for len(f.recorder.Events) > 0 {
		out = append(out, <-f.recorder.Events)
	}
	return strings.Join(out, "\n")
}

// The scanner reports each volume's usage with kubelet's labels, and warns
// once per crossing when a volume holds more than its claim requested.
func TestUsageScan(t *testing.T) {
	f := newFixture(t)
	f.prov.cfg.Name = "test/provisioner"
	log := &usageLog{}
	f.prov.cfg.Observe = log
	pv, _, err := f.prov.Provision(context.Background(), provisionOpts(claimIn("team", "data", nil), "pvc-u"))
	if err != nil {
		t.Fatal(err)
	}
	pv.Annotations[annProvisionedBy] = "test/provisioner"
	pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: "team", Name: "data", UID: "uid-1"}
	pv.Spec.Capacity[v1.ResourceStorage] = resource.MustParse("1Mi")
	f.pvs.Add(pv)
	dir := filepath.Join(f.dir, pv.Annotations[AnnDirectory])
	if err := os.WriteFile(filepath.Join(dir, "small"), make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	s := f.prov.NewUsageScanner(0)
	drainEvents(f)
	s.Scan(context.Background())
	if len(log.last) != 1 || log.last[0].Namespace != "team" || log.last[0].Claim != "data" || log.last[0].PV != "pvc-u" {
		t.Fatalf("scan results %+v", log.last)
	}
	if u := log.last[0].Used; u.Inodes != 2 || u.Bytes < 64<<10 {
		t.Errorf("usage %+v, want 2 entries and at least 64 KiB", u)
	}
	if ev := drainEvents(f); strings.Contains(ev, ReasonUsageExceedsRequest) {
		t.Errorf("warned below the request: %s", ev)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Scan(context.Background())
	if ev := drainEvents(f); !strings.Contains(ev, ReasonUsageExceedsRequest) || !strings.Contains(ev, "does not enforce") {
		t.Errorf("no warning above the request: %q", ev)
	}
	s.Scan(context.Background())
	if ev := drainEvents(f); strings.Contains(ev, ReasonUsageExceedsRequest) {
		t.Errorf("warned again on the next scan: %s", ev)
	}
	os.Remove(big)
	s.Scan(context.Background())
	os.WriteFile(big, make([]byte, 2<<20), 0o644)
	s.Scan(context.Background())
	if ev := drainEvents(f); !strings.Contains(ev, ReasonUsageExceedsRequest) {
		t.Errorf("no warning on the second crossing: %q", ev)
	}
}

func provisionOpts(claim *v1.PersistentVolumeClaim, pv string) controller.ProvisionOptions {
	return controller.ProvisionOptions{StorageClass: newClass(nil), PVName: pv, PVC: claim}
}
