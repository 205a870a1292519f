//go:build e2e

package functional

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/nfs-subdir/provisioner/e2e/framework"
)

// TestArchiveRetention: a class with archiveRetention has its archives removed by the sweeper once
// they are older than that, with an ArchivePurged Event on the class; a directory a person named
// archived-* on the same export is never touched.
func TestArchiveRetention(t *testing.T) {
	in := fw.NewInstance(t, "retention")
	in.Start(t, true, "--archive-sweep-interval=1s")
	class := in.CreateClass(t, map[string]string{"archiveRetention": "3s"})
	export := fw.DefaultExport()
	byHand := filepath.Join(export.LocalDir, "archived-"+in.Namespace+"-by-hand")
	if err := os.MkdirAll(byHand, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(byHand) })
	framework.WriteMarker(t, byHand)

	fw.CreateClaim(t, in.Namespace, framework.ClaimOptions{Name: "data", Class: class.Name})
	_, pv := fw.WaitClaimBound(t, in.Namespace, "data")
	dir := export.VolumeDir(t, pv)
	framework.WriteMarker(t, dir)
	fw.DeleteClaim(t, in.Namespace, "data")
	fw.WaitVolumeGone(t, pv.Name)
	archive := filepath.Join(filepath.Dir(dir), "archived-"+filepath.Base(dir))
	framework.AssertExists(t, archive+"/marker.txt")
	record := "nfsp-archive-" + pv.Name
	if _, err := fw.Cluster.Clientset.CoreV1().ConfigMaps(framework.ProvisionerNamespace).Get(framework.Context(t), record, metav1.GetOptions{}); err != nil {
		t.Fatalf("archive record %s/%s: %v", framework.ProvisionerNamespace, record, err)
	}

	framework.Poll(t, "the archive to be purged after 3s", time.Minute, func(context.Context) (bool, error) {
		_, err := os.Lstat(archive)
		return os.IsNotExist(err), fmt.Errorf("%s: %v", archive, err)
	})
	framework.Poll(t, "an ArchivePurged Event on the class", framework.EventTimeout, func(ctx context.Context) (bool, error) {
		events, err := fw.Cluster.Clientset.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.kind": "StorageClass", "involvedObject.name": class.Name, "reason": "ArchivePurged",
		}.AsSelector().String()})
		return err == nil && len(events.Items) > 0, err
	})
	framework.AssertExists(t, byHand+"/marker.txt")
	if _, err := fw.Cluster.Clientset.CoreV1().ConfigMaps(framework.ProvisionerNamespace).Get(framework.Context(t), record, metav1.GetOptions{}); err == nil {
		t.Errorf("the record of the purged archive is still there")
	}
}

// TestArchiveRestore: a new claim naming a deleted claim of its namespace in the restore-from
// annotation gets that claim's archive back, data and all; a claim of another namespace naming it
// is refused with a Warning that says so.
func TestArchiveRestore(t *testing.T) {
	in := fw.NewInstance(t, "restore")
	in.Start(t, true)
	class := in.CreateClass(t, map[string]string{"archiveRetention": "1h"})
	fw.CreateClaim(t, in.Namespace, framework.ClaimOptions{Name: "data", Class: class.Name})
	_, pv := fw.WaitClaimBound(t, in.Namespace, "data")
	marker, content := framework.WriteMarker(t, fw.DefaultExport().VolumeDir(t, pv))
	fw.DeleteClaim(t, in.Namespace, "data")
	fw.WaitVolumeGone(t, pv.Name)
	framework.AssertNotExists(t, marker)

	other := fw.CreateNamespace(t, "restore-thief")
	thief := fw.CreateClaim(t, other, framework.ClaimOptions{Name: "grab", Class: class.Name,
		Annotations: map[string]string{"nfs-subdir-provisioner.io/restore-from": "data"}})
	fw.WaitWarningEvent(t, thief, framework.FailureReason, "restore-from", "no recorded archive")
	fw.AssertNoVolumeForClaim(t, thief)

	fw.CreateClaim(t, in.Namespace, framework.ClaimOptions{Name: "data-again", Class: class.Name,
		Annotations: map[string]string{"nfs-subdir-provisioner.io/restore-from": "data"}})
	claim, restored := fw.WaitClaimBound(t, in.Namespace, "data-again")
	framework.AssertFileContent(t, filepath.Join(fw.DefaultExport().VolumeDir(t, restored), filepath.Base(marker)), content)
	fw.WaitEvent(t, claim, "Normal", "ArchiveRestored", pv.Name)
}
