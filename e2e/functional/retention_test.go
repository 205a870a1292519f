//go:build e2e

package functional

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// TestArchiveRetention: archives of a class with archiveRetention older than that (made old by
// the test, by dating its record back) are removed by the sweeper, with an ArchivePurged Event on
// the class; a young archive and a directory a person named archived-* stay; a dry run removes
// nothing and says what it would.
func TestArchiveRetention(t *testing.T) {
	in := fw.NewInstance(t, "retention")
	dry := in.Start(t, true, "--archive-sweep-interval=1s", "--archive-sweep-dry-run")
	class := in.CreateClass(t, map[string]string{"archiveRetention": "720h"})
	export := fw.DefaultExport()
	byHand := filepath.Join(export.LocalDir, "archived-"+in.Namespace+"-by-hand")
	if err := os.MkdirAll(byHand, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(byHand) })
	framework.WriteMarker(t, byHand)
	oldArchive, oldPV := archiveClaim(t, in, class.Name, "old")
	youngArchive, youngPV := archiveClaim(t, in, class.Name, "young")
	t.Cleanup(func() { os.RemoveAll(youngArchive) })

	// Made old by the test: its record says it was archived 31 days ago.
	records := fw.Cluster.Clientset.CoreV1().ConfigMaps(framework.ProvisionerNamespace)
	record, err := records.Get(framework.Context(t), "nfsp-archive-"+oldPV, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("archive record of PV %s: %v", oldPV, err)
	}
	record.Data["archivedAt"] = time.Now().Add(-31 * 24 * time.Hour).UTC().Format(time.RFC3339)
	if _, err := records.Update(framework.Context(t), record, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClassEvent(t, class.Name, "ArchivePurgeDue", filepath.Base(oldArchive))
	framework.AssertExists(t, oldArchive+"/marker.txt") // the dry run removed nothing

	if err := dry.Stop(); err != nil {
		t.Fatal(err)
	}
	in.Start(t, true, "--archive-sweep-interval=1s")
	framework.Poll(t, "the old archive to be purged", time.Minute, func(context.Context) (bool, error) {
		_, err := os.Lstat(oldArchive)
		return os.IsNotExist(err), fmt.Errorf("%s: %v", oldArchive, err)
	})
	waitClassEvent(t, class.Name, "ArchivePurged", filepath.Base(oldArchive))
	framework.AssertExists(t, youngArchive+"/marker.txt")
	framework.AssertExists(t, byHand+"/marker.txt")
	if _, err := records.Get(framework.Context(t), "nfsp-archive-"+oldPV, metav1.GetOptions{}); err == nil {
		t.Errorf("the record of the purged archive is still there")
	}
	if _, err := records.Get(framework.Context(t), "nfsp-archive-"+youngPV, metav1.GetOptions{}); err != nil {
		t.Errorf("the young archive's record: %v", err)
	}
}

// archiveClaim makes a claim of the class, writes a marker into it, deletes it and returns its
// archive's backing directory and its PV's name.
func archiveClaim(t *testing.T, in *framework.Instance, class, name string) (string, string) {
	t.Helper()
	fw.CreateClaim(t, in.Namespace, framework.ClaimOptions{Name: name, Class: class})
	_, pv := fw.WaitClaimBound(t, in.Namespace, name)
	dir := fw.DefaultExport().VolumeDir(t, pv)
	framework.WriteMarker(t, dir)
	fw.DeleteClaim(t, in.Namespace, name)
	fw.WaitVolumeGone(t, pv.Name)
	archive := filepath.Join(filepath.Dir(dir), "archived-"+filepath.Base(dir))
	framework.AssertExists(t, archive+"/marker.txt")
	return archive, pv.Name
}

// waitClassEvent waits for an Event of reason on the StorageClass (cluster-scoped: its Events are
// in namespace default) whose message mentions fragment.
func waitClassEvent(t *testing.T, class, reason, fragment string) {
	t.Helper()
	framework.Poll(t, fmt.Sprintf("a %s Event on StorageClass %s", reason, class), framework.EventTimeout, func(ctx context.Context) (bool, error) {
		events, err := fw.Cluster.Clientset.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.kind": "StorageClass", "involvedObject.name": class, "reason": reason,
		}.AsSelector().String()})
		if err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if strings.Contains(e.Message, fragment) {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d %s Events, none mentioning %s", len(events.Items), reason, fragment)
	})
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
