//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Export capacity: the provisioner's FSSTAT metrics match df of the export's backing directory
// within 1 %, and a class that checks capacity refuses a claim the export cannot hold, with the
// numbers in its Warning Event.
func TestExportCapacity(t *testing.T) {
	run := newFaultRun(t, "capacity", 1)
	p := run.start(t, true, "--usage-interval=1s")
	labels := map[string]string{"server": suite.env.nfsServer, "share": suite.env.nfsPath}

	t.Run("metrics match df of the export", func(t *testing.T) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(suite.env.exportDir, &st); err != nil {
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
			poll(t, fmt.Sprintf("%s within 1%% of df (%.0f)", name, df), eventTimeout, func(ctx context.Context) (bool, error) {
				got, err := p.metricWhere(ctx, name, labels)
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
		class := run.createClass(t, map[string]string{"checkAvailable": "true"})
		created := createClaim(t, run.namespace, claimOptions{name: "huge", class: class.Name, size: "1Ei"})
		waitWarningEvent(t, created, warningReason, "1Ei", "bytes available", "checkAvailable")
		assertNoVolumeForClaim(t, created)
		createClaim(t, run.namespace, claimOptions{name: "fits", class: class.Name})
		waitClaimBound(t, run.namespace, "fits")
	})

	t.Run("bytes written show in the usage metric; over the request a Warning", func(t *testing.T) {
		class := run.createClass(t, nil)
		created := createClaim(t, run.namespace, claimOptions{name: "small", class: class.Name, size: "1Mi"})
		_, pv := waitClaimBound(t, run.namespace, "small")
		dir := defaultExport().volumeDir(t, pv)
		const written = 3 << 20
		writeAsTenant(t, filepath.Join(dir, "data"), strings.Repeat("x", written))
		volume := map[string]string{"namespace": run.namespace, "persistentvolumeclaim": "small", "persistentvolume": pv.Name}
		poll(t, "the usage metric to show the bytes written", eventTimeout, func(ctx context.Context) (bool, error) {
			used, err := p.metricWhere(ctx, "nfs_subdir_provisioner_volume_used_bytes", volume)
			if err != nil || used < written {
				return false, fmt.Errorf("volume_used_bytes %.0f (%v)", used, err)
			}
			inodes, err := p.metricWhere(ctx, "nfs_subdir_provisioner_volume_used_inodes", volume)
			if err != nil || inodes != 2 {
				return false, fmt.Errorf("volume_used_inodes %.0f (%v)", inodes, err)
			}
			capacity, err := p.metricWhere(ctx, "nfs_subdir_provisioner_volume_capacity_bytes", volume)
			return capacity == 1<<20, err
		})
		waitWarningEvent(t, created, "UsageExceedsRequest", "does not enforce")
	})
}
