//go:build e2e

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// runScan measures what a usage scan costs provisioning: n claims with no scan (--usage-interval=0),
// then n claims while the provisioner walks a volume of files files at its default budget of 50
// listing calls per second per server (--usage-interval=1s keeps it walking).
func (b *bench) runScan(t *testing.T, files, n int) []benchResult {
	var out []benchResult
	t.Run(fmt.Sprintf("N=%d without scan", n), func(t *testing.T) {
		prov := b.startProvisioner(t, "noscan", "--usage-interval=0")
		out = append(out, b.runClaims(t, prov, n, fmt.Sprintf("N=%d, no scan", n)))
	})
	t.Run(fmt.Sprintf("N=%d during a scan of %d files", n, files), func(t *testing.T) {
		prov := b.startProvisioner(t, "scan", "--usage-interval=1s")
		b.bigVolume(t, files)
		const listing = "nfs_subdir_provisioner_nfs_operation_duration_seconds"
		readdirs := func() float64 {
			m, err := prov.Metrics(framework.Context(t))
			if err != nil {
				t.Fatal(err)
			}
			return m.Sum(listing, map[string]string{"operation": "READDIRPLUS"})
		}
		framework.Poll(t, "the usage scan to be walking the big volume", 2*time.Minute, func(context.Context) (bool, error) {
			return readdirs() > 100, nil
		})
		before := readdirs()
		result := b.runClaims(t, prov, n, fmt.Sprintf("N=%d, scan of %d files", n, files))
		walked := readdirs() - before
		if walked < 10 {
			t.Errorf("only %.0f listing calls during the claims: the scan was not running", walked)
		}
		result.note = fmt.Sprintf("%.0f READDIRPLUS calls of the scan during the run", walked)
		out = append(out, result) // the provisioner stops when the subtest ends, after its claims are cleaned up
	})
	return out
}

// bigVolume makes a bound claim of the provisioner under test and fills its directory, through the
// export's backing directory, with files empty files in directories of 100.
func (b *bench) bigVolume(t *testing.T, files int) {
	t.Helper()
	ctx := framework.Context(t)
	class := b.createBenchClass(t, "big")
	namespace := fw.CreateNamespace(t, "bench-big")
	claims := b.client.CoreV1().PersistentVolumeClaims(namespace)
	if _, err := claims.Create(ctx, framework.NewClaim(namespace, framework.ClaimOptions{Name: "big", Class: class}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pv *corev1.PersistentVolume
	framework.Poll(t, "the big claim to be Bound", 2*time.Minute, func(ctx context.Context) (bool, error) {
		claim, err := claims.Get(ctx, "big", metav1.GetOptions{})
		if err != nil || claim.Status.Phase != corev1.ClaimBound {
			return false, err
		}
		pv, err = b.client.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
		return err == nil, err
	})
	dir := fw.DefaultExport().VolumeDir(t, pv)
	start := time.Now()
	for i := 0; i < files; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%04d", i/100))
		if i%100 == 0 {
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%02d", i%100)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("bench: %d files written into %s in %s", files, dir, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		// Archived when the namespace goes; remove the tree and its archive from the export.
		_ = claims.Delete(context.Background(), "big", metav1.DeleteOptions{})
		framework.Poll(t, "the big volume's PV to go", 2*time.Minute, func(ctx context.Context) (bool, error) {
			_, err := b.client.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
			return err != nil, nil
		})
		os.RemoveAll(dir)
		os.RemoveAll(filepath.Join(filepath.Dir(dir), "archived-"+filepath.Base(dir)))
	})
}
