package provisioner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
)

// retentionFixture is a fixture whose provisioner records archives (ConfigMaps on a fake
// clientset) and knows the class nfs-client with params.
func retentionFixture(t *testing.T, params map[string]string) (*fixture, *ConfigMapRecords) {
	f := newFixture(t)
	records := &ConfigMapRecords{Client: fake.NewClientset(), Namespace: "storage", Provisioner: "k8s-sigs.io/nfs-subdir-external-provisioner"}
	classes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	if err := classes.Add(newClass(params)); err != nil {
		t.Fatal(err)
	}
	f.prov.cfg.Archives = records
	f.prov.cfg.Classes = storagelisters.NewStorageClassLister(classes)
	return f, records
}

// archiveAs provisions a claim named name on the class, writes data into it, and deletes it.
func (f *fixture) archiveAs(t *testing.T, name string, params map[string]string) *v1.PersistentVolume {
	t.Helper()
	claim := newClaim(nil)
	claim.Name, claim.UID = name, types.UID("uid-"+name)
	pv, err := f.provisionAs(claim, params, "pvc-"+name, true)
	if err != nil {
		t.Fatal(err)
	}
	pv.Spec.StorageClassName = "nfs-client" // as the library sets it
	pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID}
	f.write(pv.Annotations[AnnDirectory]+"/data", "of "+name)
	if err := f.prov.Delete(context.Background(), pv); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	return pv
}

func TestArchiveRetention(t *testing.T) {
	params := map[string]string{ParamArchiveRetention: "1h"}
	f, records := retentionFixture(t, params)
	ctx := context.Background()
	pv := f.archiveAs(t, "old", params)
	rec, found, err := records.Get(ctx, pv.Name)
	if err != nil || !found || rec.Archive != "archived-default-old-pvc-old" || rec.ID == "" || rec.Namespace != "default" || rec.Claim != "old" {
		t.Fatalf("record %+v, %v, %v", rec, found, err)
	}
	f.mustHave(rec.Archive+"/data", "of old")
	// A directory someone named like an archive by hand has no record: never touched.
	f.write("archived-by-hand/notes", "mine")

	f.prov.sweepArchives(ctx, time.Now().Add(59*time.Minute))
	f.mustHave(rec.Archive+"/data", "of old")
	// A dry run past the retention says what it would remove and removes nothing.
	f.prov.cfg.SweepDryRun = true
	f.prov.sweepArchives(ctx, time.Now().Add(61*time.Minute))
	f.mustHave(rec.Archive+"/data", "of old")
	if events := strings.Join(drain(f), "\n"); !strings.Contains(events, ReasonArchivePurgeDue) || strings.Contains(events, ReasonArchivePurged) {
		t.Errorf("dry run Events: %s", events)
	}
	if got, found, _ := records.Get(ctx, pv.Name); !found || got.Purging {
		t.Errorf("dry run changed the record: %+v, %v", got, found)
	}
	f.prov.cfg.SweepDryRun = false
	f.prov.sweepArchives(ctx, time.Now().Add(61*time.Minute))
	if _, err := os.Stat(filepath.Join(f.dir, rec.Archive)); !os.IsNotExist(err) {
		t.Errorf("archive past its retention still there: %v", err)
	}
	if _, found, _ := records.Get(ctx, pv.Name); found {
		t.Error("record of a purged archive still there")
	}
	f.mustHave("archived-by-hand/notes", "mine")
	if events := strings.Join(drain(f), "\n"); !strings.Contains(events, ReasonArchivePurged) {
		t.Errorf("no %s Event: %s", ReasonArchivePurged, events)
	}
}

// What is at a recorded archive's path now is not the archive (removed and replaced by another
// directory of the same name): it is kept, and said so.
func TestArchiveRetentionKeepsWhatIsNotTheArchive(t *testing.T) {
	params := map[string]string{ParamArchiveRetention: "1h"}
	f, records := retentionFixture(t, params)
	ctx := context.Background()
	pv := f.archiveAs(t, "old", params)
	rec, _, _ := records.Get(ctx, pv.Name)
	if err := os.RemoveAll(filepath.Join(f.dir, rec.Archive)); err != nil {
		t.Fatal(err)
	}
	f.write(rec.Archive+"/other", "someone else's")
	f.prov.sweepArchives(ctx, time.Now().Add(2*time.Hour))
	f.mustHave(rec.Archive+"/other", "someone else's")
	if events := strings.Join(drain(f), "\n"); !strings.Contains(events, ReasonArchiveKept) {
		t.Errorf("no %s Warning: %s", ReasonArchiveKept, events)
	}
	if _, found, _ := records.Get(ctx, pv.Name); found {
		t.Error("the record is kept; want it dropped once the archive is known to be gone")
	}
}

// A Delete that renamed the directory but did not live to complete the record is finished by
// the retry: it finds the archive by its ID.
func TestArchiveRecordCompletedByRetry(t *testing.T) {
	params := map[string]string{ParamArchiveRetention: "1h"}
	f, records := retentionFixture(t, params)
	ctx := context.Background()
	claim := newClaim(nil)
	pv, err := f.provisionAs(claim, params, "pvc-crash", true)
	if err != nil {
		t.Fatal(err)
	}
	pv.Spec.StorageClassName = "nfs-client"
	dir := pv.Annotations[AnnDirectory]
	fsys, err := f.prov.cfg.Opener.Open(ctx, testServer, testShare)
	if err != nil {
		t.Fatal(err)
	}
	info, err := fsys.Stat(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	// The crashed attempt: record written, directory renamed (to the second name: the first is
	// taken by an older archive of the same directory name), record not completed.
	if err := os.Mkdir(filepath.Join(f.dir, ArchiveName(dir, 0)), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := records.Put(ctx, ArchiveRecord{PV: pv.Name, Class: "nfs-client", Server: testServer, Share: testShare, Dir: dir, ID: info.ID}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(f.dir, dir), filepath.Join(f.dir, ArchiveName(dir, 1))); err != nil {
		t.Fatal(err)
	}
	if err := f.prov.Delete(ctx, pv); err != nil {
		t.Fatalf("retried Delete: %v", err)
	}
	rec, found, err := records.Get(ctx, pv.Name)
	if err != nil || !found || rec.Archive != ArchiveName(dir, 1) || rec.ArchivedAt.IsZero() {
		t.Fatalf("record after the retry: %+v, %v, %v; want the archive %s", rec, found, err, ArchiveName(dir, 1))
	}
}

func TestArchiveRetentionParameter(t *testing.T) {
	for _, bad := range []map[string]string{
		{ParamArchiveRetention: "30d"},
		{ParamArchiveRetention: "0s"},
		{ParamArchiveRetention: "720h", ParamOnDelete: "delete"},
	} {
		if _, err := ParseClassOptions(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	opts, err := ParseClassOptions(map[string]string{ParamArchiveRetention: "720h"})
	if err != nil || opts.Retention != 720*time.Hour {
		t.Errorf("720h: %+v, %v", opts, err)
	}
	// A provisioner that keeps no records refuses the parameter instead of ignoring it.
	f := newFixture(t)
	_, err = f.provisionAs(newClaim(nil), map[string]string{ParamArchiveRetention: "720h"}, "pvc-x", true)
	if err == nil || !strings.Contains(err.Error(), ParamArchiveRetention) {
		t.Errorf("without records: %v", err)
	}
}

// namespaceUIDs is NamespaceUIDs from a map.
type namespaceUIDs map[string]string

func (n namespaceUIDs) NamespaceUID(_ context.Context, name string) (string, error) {
	return n[name], nil
}

func TestRestoreArchive(t *testing.T) {
	params := map[string]string{ParamArchiveRetention: "720h"}
	f, records := retentionFixture(t, params)
	namespaces := namespaceUIDs{"default": "uid-default-1", "evil": "uid-evil"}
	f.prov.cfg.Namespaces = namespaces
	ctx := context.Background()
	old := f.archiveAs(t, "old", params)
	rec, _, _ := records.Get(ctx, old.Name)
	if rec.NamespaceUID != "uid-default-1" {
		t.Fatalf("record %+v: want the namespace's UID", rec)
	}

	// Another namespace cannot name it, by claim or by archive name.
	for _, name := range []string{"old", rec.Archive} {
		_, err := f.provisionAs(claimIn("evil", "grab", map[string]string{AnnRestoreFrom: name}), params, "pvc-evil", true)
		wantRefusal(t, err, AnnRestoreFrom, "no recorded archive")
	}
	// A later namespace of the same name cannot either.
	namespaces["default"] = "uid-default-2"
	again := newClaim(map[string]string{AnnRestoreFrom: "old"})
	again.Name, again.UID = "new", "uid-new"
	_, err := f.provisionAs(again, params, "pvc-new", true)
	wantRefusal(t, err, "earlier namespace")
	namespaces["default"] = "uid-default-1"

	pv, err := f.provisionAs(again, params, "pvc-new", true)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	f.mustHave(pv.Annotations[AnnDirectory]+"/data", "of old")
	if _, err := os.Stat(filepath.Join(f.dir, rec.Archive)); !os.IsNotExist(err) {
		t.Errorf("the archive is still there after the restore: %v", err)
	}
	if _, found, _ := records.Get(ctx, old.Name); found {
		t.Error("the record of a restored archive is still there")
	}
	if events := strings.Join(drain(f), "\n"); !strings.Contains(events, ReasonArchiveRestored) {
		t.Errorf("no %s Event: %s", ReasonArchiveRestored, events)
	}
	// Restored once: not again.
	twice := newClaim(map[string]string{AnnRestoreFrom: "old"})
	twice.Name, twice.UID = "twice", "uid-twice"
	_, err = f.provisionAs(twice, params, "pvc-twice", true)
	wantRefusal(t, err, "no recorded archive")
}

// The review's cases: an archive a static PV uses is neither purged nor restored; the namespace
// UID is the one the volume was made in, not the one at delete time; an archive being purged is
// not restored; a record naming anything but an archived-* sibling of its directory is no record.
func TestArchiveRetentionGuards(t *testing.T) {
	params := map[string]string{ParamArchiveRetention: "1h"}
	f, records := retentionFixture(t, params)
	namespaces := namespaceUIDs{"default": "uid-1"}
	f.prov.cfg.Namespaces = namespaces
	ctx := context.Background()

	claim := newClaim(nil)
	claim.Name, claim.UID = "kept", "uid-kept"
	pv, err := f.provisionAs(claim, params, "pvc-kept", true)
	if err != nil {
		t.Fatal(err)
	}
	if pv.Annotations[AnnNamespaceUID] != "uid-1" {
		t.Fatalf("PV annotations %v: want the namespace UID at provisioning", pv.Annotations)
	}
	namespaces["default"] = "uid-2" // the namespace deleted and made again before the Delete
	pv.Spec.StorageClassName = "nfs-client"
	pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: "default", Name: "kept", UID: claim.UID}
	f.write(pv.Annotations[AnnDirectory]+"/data", "of kept")
	if err := f.prov.Delete(ctx, pv); err != nil {
		t.Fatal(err)
	}
	rec, _, _ := records.Get(ctx, pv.Name)
	if rec.NamespaceUID != "uid-1" {
		t.Errorf("record namespace UID %q: want uid-1, the one the volume was made in", rec.NamespaceUID)
	}

	// A static PV made to recover the archive.
	static := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "recover"}, Spec: v1.PersistentVolumeSpec{
		PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: testServer, Path: testShare + "/" + rec.Archive}}}}
	if err := f.pvs.Add(static); err != nil {
		t.Fatal(err)
	}
	f.prov.sweepArchives(ctx, time.Now().Add(2*time.Hour))
	f.mustHave(rec.Archive+"/data", "of kept")
	if events := strings.Join(drain(f), "\n"); !strings.Contains(events, ReasonArchiveKept) || !strings.Contains(events, "recover") {
		t.Errorf("no ArchiveKept Warning naming the PV: %s", events)
	}
	namespaces["default"] = "uid-1"
	restore := newClaim(map[string]string{AnnRestoreFrom: "kept"})
	restore.Name, restore.UID = "again", "uid-again"
	_, err = f.provisionAs(restore, map[string]string{}, "pvc-again", true)
	wantRefusal(t, err, "used by PV recover")
	if err := f.pvs.Delete(static); err != nil {
		t.Fatal(err)
	}

	// Marked purging (a sweep that did not finish): not restored.
	rec, _, _ = records.Get(ctx, pv.Name)
	rec.Purging = true
	if err := records.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	_, err = f.provisionAs(restore, map[string]string{}, "pvc-again", true)
	wantRefusal(t, err, "being removed")

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
