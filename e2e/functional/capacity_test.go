//go:build e2e

package functional

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// Export capacity: the provisioner's FSSTAT metrics match df of the export's backing directory
// within 1 %, and a class that checks capacity refuses a claim the export cannot hold, with the
// numbers in its Warning Event.
func TestExportCapacity(t *testing.T) {
	run := fw.NewInstance(t, "capacity")
	p := run.Start(t, true, "--usage-interval=1s")
	labels := map[string]string{"server": fw.Env.NFSServer, "share": fw.Env.NFSPath}

	t.Run("metrics match df of the export", func(t *testing.T) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(fw.Env.ExportDir, &st); err != nil {
			t.Fatal(err)
		}
		bs := float64(st.Bsize)
		want := map[string]float64{
			"nfs_subdir_provisioner_export_size_bytes":      float64(st.Blocks) * bs,
			"nfs_subdir_provisioner_export_available_bytes": float64(st.Bavail) * bs,
			"nfs_subdir_provisioner_export_free_bytes":      float64(st.Bfree) * bs,
			"nfs_subdir_provisioner_export_total_inodes":    float64(st.Files),
		}
		for name, df := range want {
			framework.Poll(t, fmt.Sprintf("%s within 1%% of df (%.0f)", name, df), framework.EventTimeout, func(ctx context.Context) (bool, error) {
				got, err := p.Metric(ctx, name, labels)
				if err != nil {
					return false, err
				}
				if math.Abs(got-df) > 0.01*df {
					return false, fmt.Errorf("%s = %.0f", name, got)
				}
				return true, nil
			})
		}
	})

	t.Run("a claim bigger than the export is refused with the numbers", func(t *testing.T) {
		class := run.CreateClass(t, map[string]string{"checkAvailable": "true"})
		created := fw.CreateClaim(t, run.Namespace, framework.ClaimOptions{Name: "huge", Class: class.Name, Size: "1Ei"})
		fw.WaitWarningEvent(t, created, framework.FailureReason, "1Ei", "bytes available", "checkAvailable")
		fw.AssertNoVolumeForClaim(t, created)
		fw.CreateClaim(t, run.Namespace, framework.ClaimOptions{Name: "fits", Class: class.Name})
		fw.WaitClaimBound(t, run.Namespace, "fits")
	})

	t.Run("bytes written show in the usage metric; over the request a Warning", func(t *testing.T) {
		class := run.CreateClass(t, nil)
		created := fw.CreateClaim(t, run.Namespace, framework.ClaimOptions{Name: "small", Class: class.Name, Size: "1Mi"})
		_, pv := fw.WaitClaimBound(t, run.Namespace, "small")
		dir := fw.DefaultExport().VolumeDir(t, pv)
		const written = 3 << 20
		writeAsTenant(t, filepath.Join(dir, "data"), strings.Repeat("x", written))
		volume := map[string]string{"namespace": run.Namespace, "persistentvolumeclaim": "small", "persistentvolume": pv.Name}
		framework.Poll(t, "the usage metric to show the bytes written", framework.EventTimeout, func(ctx context.Context) (bool, error) {
			used, err := p.Metric(ctx, "nfs_subdir_provisioner_volume_used_bytes", volume)
			if err != nil || used < written {
				return false, fmt.Errorf("volume_used_bytes %.0f (%v)", used, err)
			}
			inodes, err := p.Metric(ctx, "nfs_subdir_provisioner_volume_used_inodes", volume)
			if err != nil || inodes != 2 {
				return false, fmt.Errorf("volume_used_inodes %.0f (%v)", inodes, err)
			}
			capacity, err := p.Metric(ctx, "nfs_subdir_provisioner_volume_capacity_bytes", volume)
			return capacity == 1<<20, err
		})
		fw.WaitWarningEvent(t, created, "UsageExceedsRequest", "does not enforce")
	})
}
