//go:build e2e

package functional

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDeletePolicies deletes a claim under each delete policy and checks the directory on the export.
func TestDeletePolicies(t *testing.T) {
	archived := func(dir string) string { return filepath.Join(filepath.Dir(dir), "archived-"+filepath.Base(dir)) }

	t.Run("default archives the directory with its data", func(t *testing.T) {
		dir, marker, content := provisionAndDelete(t, nil)
		framework.AssertNotExists(t, dir)
		framework.AssertFileContent(t, filepath.Join(archived(dir), filepath.Base(marker)), content)
	})
	t.Run("archiveOnDelete false removes the directory", func(t *testing.T) {
		dir, _, _ := provisionAndDelete(t, map[string]string{"archiveOnDelete": "false"})
		framework.AssertNotExists(t, dir)
		framework.AssertNotExists(t, archived(dir))
	})
	t.Run("onDelete delete removes the directory", func(t *testing.T) {
		dir, _, _ := provisionAndDelete(t, map[string]string{"onDelete": "delete"})
		framework.AssertNotExists(t, dir)
		framework.AssertNotExists(t, archived(dir))
	})
	t.Run("onDelete retain keeps the directory in place", func(t *testing.T) {
		dir, marker, content := provisionAndDelete(t, map[string]string{"onDelete": "retain"})
		framework.AssertFileContent(t, marker, content)
		framework.AssertNotExists(t, archived(dir))
	})
	t.Run("onDelete archive archives the directory with its data", func(t *testing.T) {
		dir, marker, content := provisionAndDelete(t, map[string]string{"onDelete": "archive"})
		framework.AssertNotExists(t, dir)
		framework.AssertFileContent(t, filepath.Join(archived(dir), filepath.Base(marker)), content)
	})
	t.Run("reclaimPolicy Retain keeps the PV and the directory", func(t *testing.T) {
		namespace := fw.CreateNamespace(t, "retain")
		class := fw.CreateClass(t, framework.ClassOptions{
			Parameters:    map[string]string{"onDelete": "delete"},
			ReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
		})
		fw.CreateClaim(t, namespace, framework.ClaimOptions{Name: "data", Class: class.Name})
		_, volume := fw.WaitClaimBound(t, namespace, "data")
		t.Cleanup(func() { deleteVolume(t, volume.Name) })
		if volume.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
			t.Errorf("PV reclaim policy %s, want Retain (copied from the class)", volume.Spec.PersistentVolumeReclaimPolicy)
		}
		dir := fw.DefaultExport().VolumeDir(t, volume)
		marker, content := framework.WriteMarker(t, dir)
		fw.DeleteClaim(t, namespace, "data")
		waitVolumePhase(t, volume.Name, corev1.VolumeReleased)
		framework.AssertFileContent(t, marker, content)
		framework.AssertNotExists(t, archived(dir))
	})
}

// provisionAndDelete provisions a claim on a class with the given parameters, puts a marker file
// into its directory, deletes the claim and waits for the PV to go. It returns the directory and
// the marker file's path and content.
func provisionAndDelete(t *testing.T, parameters map[string]string) (dir, marker, content string) {
	t.Helper()
	namespace := fw.CreateNamespace(t, "delete")
	class := fw.CreateClass(t, framework.ClassOptions{Parameters: parameters})
	fw.CreateClaim(t, namespace, framework.ClaimOptions{Name: "data", Class: class.Name})
	_, volume := fw.WaitClaimBound(t, namespace, "data")
	dir = fw.DefaultExport().VolumeDir(t, volume)
	framework.AssertDir(t, dir, framework.DirAttrs{Mode: 0o777})
	marker, content = framework.WriteMarker(t, dir)
	fw.DeleteClaim(t, namespace, "data")
	fw.WaitVolumeGone(t, volume.Name)
	return dir, marker, content
}

func waitVolumePhase(t *testing.T, name string, phase corev1.PersistentVolumePhase) {
	t.Helper()
	framework.Poll(t, fmt.Sprintf("PV %s to be %s", name, phase), framework.DeleteTimeout, func(ctx context.Context) (bool, error) {
		volume, err := fw.Cluster.Clientset.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return volume.Status.Phase == phase, fmt.Errorf("PV is %s", volume.Status.Phase)
	})
}

// deleteVolume removes a PV the provisioner must not delete itself (reclaim policy Retain).
func deleteVolume(t *testing.T, name string) {
	t.Helper()
	err := fw.Cluster.Clientset.CoreV1().PersistentVolumes().Delete(context.Background(), name, metav1.DeleteOptions{})
	ignoreNotFound(t, err)
}
