package archive_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/archive"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/internal/provtest"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// retentionFixture is a fixture whose provisioner records archives (ConfigMaps on a fake
// clientset), knows the class nfs-client with params, and reads namespace UIDs from namespaces.
func retentionFixture(t *testing.T, params map[string]string, namespaces volume.NamespaceUIDs) (*provtest.Fixture, *archive.ConfigMapRecords) {
	records := &archive.ConfigMapRecords{Client: fake.NewClientset(), Namespace: "storage", Provisioner: provtest.Provisioner}
	f := provtest.New(t, provtest.Options{Records: records, Namespaces: namespaces, Classes: []*storagev1.StorageClass{provtest.Class(params)}})
	return f, records
}

// archiveAs provisions a claim named name on the class, writes data into it, and deletes it.
func archiveAs(t *testing.T, f *provtest.Fixture, name string, params map[string]string) *v1.PersistentVolume {
	t.Helper()
	claim := provtest.Claim(nil)
	claim.Name, claim.UID = name, types.UID("uid-"+name)
	pv, err := f.ProvisionAs(claim, params, "pvc-"+name, true)
	if err != nil {
		t.Fatal(err)
	}
	pv.Spec.StorageClassName = "nfs-client" // as the library sets it
	pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID}
	f.Write(pv.Annotations[volume.AnnDirectory]+"/data", "of "+name)
	if err := f.Prov.Delete(context.Background(), pv); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	return pv
}

func TestArchiveRetention(t *testing.T) {
	params := map[string]string{class.ParamArchiveRetention: "1h"}
	f, records := retentionFixture(t, params, nil)
	ctx := context.Background()
	pv := archiveAs(t, f, "old", params)
	rec, found, err := records.Get(ctx, pv.Name)
	if err != nil || !found || rec.Archive != "archived-default-old-pvc-old" || rec.ID == "" || rec.Namespace != "default" || rec.Claim != "old" {
		t.Fatalf("record %+v, %v, %v", rec, found, err)
	}
	f.MustHave(rec.Archive+"/data", "of old")
	// A directory someone named like an archive by hand has no record: never touched.
	f.Write("archived-by-hand/notes", "mine")

	f.Archives.SweepOnce(ctx, time.Now().Add(59*time.Minute))
	f.MustHave(rec.Archive+"/data", "of old")
	// A dry run past the retention says what it would remove and removes nothing.
	dry := f.ArchiveConfig
	dry.DryRun = true
	archive.New(dry).SweepOnce(ctx, time.Now().Add(61*time.Minute))
	f.MustHave(rec.Archive+"/data", "of old")
	if events := f.Events(); !strings.Contains(events, archive.ReasonArchivePurgeDue) || strings.Contains(events, archive.ReasonArchivePurged) {
		t.Errorf("dry run Events: %s", events)
	}
	if got, found, _ := records.Get(ctx, pv.Name); !found || got.Purging {
		t.Errorf("dry run changed the record: %+v, %v", got, found)
	}
	f.Archives.SweepOnce(ctx, time.Now().Add(61*time.Minute))
	if _, err := os.Stat(filepath.Join(f.Dir, rec.Archive)); !os.IsNotExist(err) {
		t.Errorf("archive past its retention still there: %v", err)
	}
	if _, found, _ := records.Get(ctx, pv.Name); found {
		t.Error("record of a purged archive still there")
	}
	f.MustHave("archived-by-hand/notes", "mine")
	if events := f.Events(); !strings.Contains(events, archive.ReasonArchivePurged) {
		t.Errorf("no %s Event: %s", archive.ReasonArchivePurged, events)
	}
}

// What is at a recorded archive's path now is not the archive (removed and replaced by another
// directory of the same name): it is kept, and said so.
func TestArchiveRetentionKeepsWhatIsNotTheArchive(t *testing.T) {
	params := map[string]string{class.ParamArchiveRetention: "1h"}
	f, records := retentionFixture(t, params, nil)
	ctx := context.Background()
	pv := archiveAs(t, f, "old", params)
	rec, _, _ := records.Get(ctx, pv.Name)
	if err := os.RemoveAll(filepath.Join(f.Dir, rec.Archive)); err != nil {
		t.Fatal(err)
	}
	f.Write(rec.Archive+"/other", "someone else's")
	f.Archives.SweepOnce(ctx, time.Now().Add(2*time.Hour))
	f.MustHave(rec.Archive+"/other", "someone else's")
	if events := f.Events(); !strings.Contains(events, archive.ReasonArchiveKept) {
		t.Errorf("no %s Warning: %s", archive.ReasonArchiveKept, events)
	}
	if _, found, _ := records.Get(ctx, pv.Name); found {
		t.Error("the record is kept; want it dropped once the archive is known to be gone")
	}
}

// A Delete that renamed the directory but did not live to complete the record is finished by
// the retry: it finds the archive by its ID.
func TestArchiveRecordCompletedByRetry(t *testing.T) {
	params := map[string]string{class.ParamArchiveRetention: "1h"}
	f, records := retentionFixture(t, params, nil)
	ctx := context.Background()
	claim := provtest.Claim(nil)
	pv, err := f.ProvisionAs(claim, params, "pvc-crash", true)
	if err != nil {
		t.Fatal(err)
	}
	pv.Spec.StorageClassName = "nfs-client"
	dir := pv.Annotations[volume.AnnDirectory]
	fsys, err := f.Opener.Get().Open(ctx, provtest.Server, provtest.Share)
	if err != nil {
		t.Fatal(err)
	}
	info, err := fsys.Stat(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	// The crashed attempt: record written, directory renamed (to the second name: the first is
	// taken by an older archive of the same directory name), record not completed.
	if err := os.Mkdir(filepath.Join(f.Dir, volume.ArchiveName(dir, 0)), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := records.Put(ctx, archive.Record{PV: pv.Name, Class: "nfs-client", Server: provtest.Server, Share: provtest.Share, Dir: dir, ID: info.ID}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(f.Dir, dir), filepath.Join(f.Dir, volume.ArchiveName(dir, 1))); err != nil {
		t.Fatal(err)
	}
	if err := f.Prov.Delete(ctx, pv); err != nil {
		t.Fatalf("retried Delete: %v", err)
	}
	rec, found, err := records.Get(ctx, pv.Name)
	if err != nil || !found || rec.Archive != volume.ArchiveName(dir, 1) || rec.ArchivedAt.IsZero() {
		t.Fatalf("record after the retry: %+v, %v, %v; want the archive %s", rec, found, err, volume.ArchiveName(dir, 1))
	}
}

func TestArchiveRetentionParameter(t *testing.T) {
	for _, bad := range []map[string]string{
		{class.ParamArchiveRetention: "30d"},
		{class.ParamArchiveRetention: "0s"},
		{class.ParamArchiveRetention: "720h", class.ParamOnDelete: "delete"},
	} {
		if _, err := class.Parse(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	opts, err := class.Parse(map[string]string{class.ParamArchiveRetention: "720h"})
	if err != nil || opts.Retention != 720*time.Hour {
		t.Errorf("720h: %+v, %v", opts, err)
	}
	// A provisioner that keeps no records refuses the parameter instead of ignoring it.
	f := provtest.New(t, provtest.Options{})
	_, err = f.ProvisionAs(provtest.Claim(nil), map[string]string{class.ParamArchiveRetention: "720h"}, "pvc-x", true)
	if err == nil || !strings.Contains(err.Error(), class.ParamArchiveRetention) {
		t.Errorf("without records: %v", err)
	}
}

// namespaceUIDs is NamespaceUIDs from a map.
type namespaceUIDs map[string]string

func (n namespaceUIDs) NamespaceUID(_ context.Context, name string) (string, error) {
	return n[name], nil
}

func TestRestoreArchive(t *testing.T) {
	params := map[string]string{class.ParamArchiveRetention: "720h"}
	namespaces := namespaceUIDs{"default": "uid-default-1", "evil": "uid-evil"}
	f, records := retentionFixture(t, params, namespaces)
	ctx := context.Background()
	old := archiveAs(t, f, "old", params)
	rec, _, _ := records.Get(ctx, old.Name)
	if rec.NamespaceUID != "uid-default-1" {
		t.Fatalf("record %+v: want the namespace's UID", rec)
	}

	// Another namespace cannot name it, by claim or by archive name.
	for _, name := range []string{"old", rec.Archive} {
		_, err := f.ProvisionAs(provtest.ClaimIn("evil", "grab", map[string]string{archive.AnnRestoreFrom: name}), params, "pvc-evil", true)
		provtest.WantRefusal(t, err, archive.AnnRestoreFrom, "no recorded archive")
	}
	// A later namespace of the same name cannot either.
	namespaces["default"] = "uid-default-2"
	again := provtest.Claim(map[string]string{archive.AnnRestoreFrom: "old"})
	again.Name, again.UID = "new", "uid-new"
	_, err := f.ProvisionAs(again, params, "pvc-new", true)
	provtest.WantRefusal(t, err, "earlier namespace")
	namespaces["default"] = "uid-default-1"

	pv, err := f.ProvisionAs(again, params, "pvc-new", true)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	f.MustHave(pv.Annotations[volume.AnnDirectory]+"/data", "of old")
	if _, err := os.Stat(filepath.Join(f.Dir, rec.Archive)); !os.IsNotExist(err) {
		t.Errorf("the archive is still there after the restore: %v", err)
	}
	if _, found, _ := records.Get(ctx, old.Name); found {
		t.Error("the record of a restored archive is still there")
	}
	if events := f.Events(); !strings.Contains(events, archive.ReasonArchiveRestored) {
		t.Errorf("no %s Event: %s", archive.ReasonArchiveRestored, events)
	}
	// Restored once: not again.
	twice := provtest.Claim(map[string]string{archive.AnnRestoreFrom: "old"})
	twice.Name, twice.UID = "twice", "uid-twice"
	_, err = f.ProvisionAs(twice, params, "pvc-twice", true)
	provtest.WantRefusal(t, err, "no recorded archive")
}

// The review's cases: an archive a static PV uses is neither purged nor restored; the namespace
// UID is the one the volume was made in, not the one at delete time; an archive being purged is
// not restored; a record naming anything but an archived-* sibling of its directory is no record.
func TestArchiveRetentionGuards(t *testing.T) {
	params := map[string]string{class.ParamArchiveRetention: "1h"}
	namespaces := namespaceUIDs{"default": "uid-1"}
	f, records := retentionFixture(t, params, namespaces)
	ctx := context.Background()

	claim := provtest.Claim(nil)
	claim.Name, claim.UID = "kept", "uid-kept"
	pv, err := f.ProvisionAs(claim, params, "pvc-kept", true)
	if err != nil {
		t.Fatal(err)
	}
	if pv.Annotations[volume.AnnNamespaceUID] != "uid-1" {
		t.Fatalf("PV annotations %v: want the namespace UID at provisioning", pv.Annotations)
	}
	namespaces["default"] = "uid-2" // the namespace deleted and made again before the Delete
	pv.Spec.StorageClassName = "nfs-client"
	pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: "default", Name: "kept", UID: claim.UID}
	f.Write(pv.Annotations[volume.AnnDirectory]+"/data", "of kept")
	if err := f.Prov.Delete(ctx, pv); err != nil {
		t.Fatal(err)
	}
	rec, _, _ := records.Get(ctx, pv.Name)
	if rec.NamespaceUID != "uid-1" {
		t.Errorf("record namespace UID %q: want uid-1, the one the volume was made in", rec.NamespaceUID)
	}

	// A static PV made to recover the archive.
	static := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "recover"}, Spec: v1.PersistentVolumeSpec{
		PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: provtest.Server, Path: provtest.Share + "/" + rec.Archive}}}}
	if err := f.PVs.Add(static); err != nil {
		t.Fatal(err)
	}
	f.Archives.SweepOnce(ctx, time.Now().Add(2*time.Hour))
	f.MustHave(rec.Archive+"/data", "of kept")
	if events := f.Events(); !strings.Contains(events, archive.ReasonArchiveKept) || !strings.Contains(events, "recover") {
		t.Errorf("no ArchiveKept Warning naming the PV: %s", events)
	}
	namespaces["default"] = "uid-1"
	restore := provtest.Claim(map[string]string{archive.AnnRestoreFrom: "kept"})
	restore.Name, restore.UID = "again", "uid-again"
	_, err = f.ProvisionAs(restore, map[string]string{}, "pvc-again", true)
	provtest.WantRefusal(t, err, "used by PV recover")
	if err := f.PVs.Delete(static); err != nil {
		t.Fatal(err)
	}

	// Marked purging (a sweep that did not finish): not restored.
	rec, _, _ = records.Get(ctx, pv.Name)
	rec.Purging = true
	if err := records.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	_, err = f.ProvisionAs(restore, map[string]string{}, "pvc-again", true)
	provtest.WantRefusal(t, err, "being removed")

	// A forged record naming another path is no record at all.
	forged := rec
	forged.PV, forged.Archive = "pvc-forged", "victim"
	if err := records.Put(ctx, forged); err != nil {
		t.Fatal(err)
	}
	all, err := records.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if r.PV == "pvc-forged" {
			t.Errorf("a record naming %q was read as a record", r.Archive)
		}
	}
}

// racingRecords runs beforeGet once, the first time a record is read by name: a sweep that
// marks the archive purging and removes part of it between the restore's listing of the records
// and its taking of the archive.
type racingRecords struct {
	archive.Records
	beforeGet func()
}

func (r *racingRecords) Get(ctx context.Context, pv string) (archive.Record, bool, error) {
	if r.beforeGet != nil {
		r.beforeGet()
		r.beforeGet = nil
	}
	return r.Records.Get(ctx, pv)
}

// A restore reads the record again once it holds the archive: one the sweeper marked purging
// since the restore listed it (and half removed before it failed) is never handed over.
func TestRestoreNeverTakesAHalfPurgedArchive(t *testing.T) {
	params := map[string]string{class.ParamArchiveRetention: "720h"}
	namespaces := namespaceUIDs{"default": "uid-default"}
	records := &racingRecords{Records: &archive.ConfigMapRecords{Client: fake.NewClientset(), Namespace: "storage", Provisioner: provtest.Provisioner}}
	f := provtest.New(t, provtest.Options{Records: records, Namespaces: namespaces, Classes: []*storagev1.StorageClass{provtest.Class(params)}})
	ctx := context.Background()
	old := archiveAs(t, f, "old", params)
	f.Write(old.Annotations[volume.AnnDirectory]+"/../archived-default-old-pvc-old/second", "2")
	rec, _, err := records.Records.Get(ctx, old.Name)
	if err != nil {
		t.Fatal(err)
	}
	records.beforeGet = func() { // the sweep, between the listing and the lock
		purging := rec
		purging.Purging = true
		if err := records.Records.Put(ctx, purging); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(f.Dir, rec.Archive, "second")); err != nil {
			t.Fatal(err)
		}
	}
	claim := provtest.Claim(map[string]string{archive.AnnRestoreFrom: "old"})
	claim.Name, claim.UID = "new", "uid-new"
	_, err = f.ProvisionAs(claim, params, "pvc-new", true)
	provtest.WantRefusal(t, err, "being removed")
	f.MustHave(rec.Archive+"/data", "of old") // left where it is, for the sweep to finish
	if _, err := os.Stat(filepath.Join(f.Dir, "default-new-pvc-new")); !os.IsNotExist(err) {
		t.Errorf("the half-purged archive was handed to the claim: %v", err)
	}
}
