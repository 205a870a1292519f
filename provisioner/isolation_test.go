package provisioner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// Tenant isolation: one claim never reaches another's data, whatever its
// namespace's name, its labels and annotations, or the timing.

func claimIn(ns, name string, annotations map[string]string) *v1.PersistentVolumeClaim {
	c := newClaim(annotations)
	c.Namespace, c.Name, c.UID = ns, name, types.UID(ns+"-"+name+"-uid")
	return c
}

// provisionAs provisions claim as PV pv and, unless hidden, adds the PV
// to the informer's index.
func (f *fixture) provisionAs(claim *v1.PersistentVolumeClaim, params map[string]string, pv string, hidden bool) (*v1.PersistentVolume, error) {
	f.t.Helper()
	out, _, err := f.prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: newClass(params), PVName: pv, PVC: claim})
	if err == nil && !hidden {
		if err := f.pvs.Add(out); err != nil {
			f.t.Fatal(err)
		}
	}
	return out, err
}

func (f *fixture) write(rel, data string) {
	f.t.Helper()
	p := filepath.Join(f.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) mustHave(rel, data string) {
	f.t.Helper()
	got, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(rel)))
	if err != nil || string(got) != data {
		f.t.Errorf("%s: %q, %v; want %q untouched", rel, got, err, data)
	}
}

func wantRefusal(t *testing.T, err error, words ...string) {
	t.Helper()
	var pe *placementError
	if err == nil {
		t.Fatal("Provision succeeded; want a refusal")
	}
	if !errors.As(err, &pe) && !strings.Contains(err.Error(), "StorageClass") {
		t.Errorf("not a placement refusal: %v", err)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q does not say %q", err, w)
		}
	}
}

// Defect 1: claim "data" of namespace "archived-team-a" expands to the
// archive of team-a's "data"; it must not be handed that archive.
func TestNewClaimNeverGetsAnArchive(t *testing.T) {
	for _, tc := range []struct {
		name, pattern string
		victim        *v1.PersistentVolumeClaim
		attacker      *v1.PersistentVolumeClaim
		archive       string
	}{
		{"namespace named like the archive", "${.PVC.namespace}-${.PVC.name}",
			claimIn("team-a", "data", nil), claimIn("archived-team-a", "data", nil), "archived-team-a-data"},
		{"annotation naming the archive", "${.PVC.namespace}/${.PVC.annotations.path}",
			claimIn("team-a", "data", map[string]string{"path": "data"}), claimIn("team-a", "new", map[string]string{"path": "archived-data"}), "team-a/archived-data"},
	} {
		for _, reuse := range []string{"", "any"} {
			t.Run(tc.name+" reuse="+reuse, func(t *testing.T) {
				f := newFixture(t)
				params := map[string]string{"pathPattern": tc.pattern}
				if reuse != "" { // even a class that lets tenants share directories never hands out an archive
					params["reuseDirectory"] = reuse
				}
				pv, err := f.provisionAs(tc.victim, params, "pvc-victim", false)
				if err != nil {
					t.Fatal(err)
				}
				f.write(pv.Annotations[AnnDirectory]+"/secret", "team-a's data")
				if err := f.prov.Delete(context.Background(), pv); err != nil {
					t.Fatal(err)
				}
				f.pvs.Delete(pv)
				f.mustHave(tc.archive+"/secret", "team-a's data")
				_, err = f.provisionAs(tc.attacker, params, "pvc-attacker", false)
				wantRefusal(t, err, "archive", "pathPattern")
			})
		}
	}
}

// A pattern whose first element is not the namespace lets annotations name
// any path: an existing directory there is refused unless the class says
// every tenant may share (reuseDirectory=any).
func TestReuseOnlyWithinNamespace(t *testing.T) {
	f := newFixture(t)
	f.write("team-a-retained/secret", "team-a's data")
	unscoped := map[string]string{"pathPattern": "${.PVC.annotations.path}"}
	_, err := f.provisionAs(claimIn("evil", "grab", map[string]string{"path": "team-a-retained"}), unscoped, "pvc-1", false)
	wantRefusal(t, err, "namespace", "reuseDirectory")
	f.mustHave("team-a-retained/secret", "team-a's data")

	// Namespace-scoped: a claim made again in the same namespace gets its directory back.
	f.write("team-a/data/kept", "still here")
	scoped := map[string]string{"pathPattern": "${.PVC.namespace}/${.PVC.name}"}
	pv, err := f.provisionAs(claimIn("team-a", "data", nil), scoped, "pvc-2", false)
	if err != nil {
		t.Fatalf("re-created claim in its own namespace: %v", err)
	}
	if pv.Annotations[AnnDirectory] != "team-a/data" {
		t.Errorf("directory %s", pv.Annotations[AnnDirectory])
	}
	if !strings.Contains(strings.Join(drain(f), "\n"), ReasonDirectoryReused) {
		t.Error("no DirectoryReused Event")
	}
	f.mustHave("team-a/data/kept", "still here")

	never := map[string]string{"pathPattern": "${.PVC.namespace}/${.PVC.name}", "reuseDirectory": "never"}
	f.write("team-b/data/kept", "x")
	_, err = f.provisionAs(claimIn("team-b", "data", nil), never, "pvc-3", false)
	wantRefusal(t, err, "reuseDirectory=never")

	any := map[string]string{"pathPattern": "${.PVC.annotations.path}", "reuseDirectory": "any"}
	if _, err := f.provisionAs(claimIn("evil", "grab2", map[string]string{"path": "team-a-retained"}), any, "pvc-4", false); err != nil {
		t.Errorf("reuseDirectory=any: %v", err)
	}
}

func drain(f *fixture) []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// A claim's directory is never one a live PV uses, inside one, or around one.
func TestClaimNotPlacedOnOrInsideAnotherVolume(t *testing.T) {
	f := newFixture(t)
	unscoped := map[string]string{"pathPattern": "${.PVC.annotations.path}", "reuseDirectory": "any"}
	if _, err := f.provisionAs(claimIn("team-a", "data", map[string]string{"path": "vols/a"}), unscoped, "pvc-a", false); err != nil {
		t.Fatal(err)
	}
	f.write("vols/a/secret", "team-a's data")
	for _, path := range []string{"vols/a", "vols/a/inside", "vols"} {
		_, err := f.provisionAs(claimIn("evil", "x", map[string]string{"path": path}), unscoped, "pvc-evil", false)
		wantRefusal(t, err, "pvc-a")
	}
	f.mustHave("vols/a/secret", "team-a's data")
}

// Defect 5: a MKDIR that reached the server but whose reply was lost, on a
// server that cleared setgid: the retry finds the directory and must make
// its mode what was asked, not report success with 0775.
type lostReplyFS struct {
	export.FS
	failed bool
}

func (l *lostReplyFS) Mkdir(ctx context.Context, dir string, a export.DirAttrs) error {
	if l.failed {
		return l.FS.Mkdir(ctx, dir, a)
	}
	l.failed = true
	a.Mode &^= 0o2000 // the server clears setgid
	if err := l.FS.Mkdir(ctx, dir, a); err != nil {
		return err
	}
	return context.DeadlineExceeded // and the reply never arrives
}

func TestRetryAfterLostReplySetsModeAndOwner(t *testing.T) {
	f := newFixture(t)
	inner, _ := f.prov.cfg.Opener.Open(context.Background(), testServer, testShare)
	f.prov.cfg.Opener = fsOpener{&lostReplyFS{FS: inner}}
	claim := newClaim(map[string]string{AnnDirectoryMode: "2775", AnnDirectoryGID: "3000"})
	if _, state, err := f.provision(claim, newClass(nil)); err == nil || state != controller.ProvisioningInBackground {
		t.Fatalf("first attempt: %v (state %s), want a timeout in background", err, state)
	}
	f.prov.gate = newServerGate() // the retry comes after the gate's back-off
	f.mustProvision(claim, newClass(nil))
	mode, _, gid := statOwner(t, filepath.Join(f.dir, "default-data-"+testPV))
	if mode != 0o2775 || gid != 3000 {
		t.Errorf("after the retry: mode %04o gid %d, want 2775 and 3000", mode, gid)
	}
}

// Defect 6: the PV of a claim provisioned a moment ago inside the
// directory being deleted is not in the informer yet; the Delete must
// leave the directory alone.
func TestDeleteWaitsForNestedProvision(t *testing.T) {
	f := newFixture(t)
	// The parent: a PV of this provisioner the informer does not show yet.
	if err := os.MkdirAll(filepath.Join(f.dir, "shared"), 0o777); err != nil {
		t.Fatal(err)
	}
	parent := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-parent", Annotations: map[string]string{AnnShare: testShare, AnnDirectory: "shared", AnnOnDelete: "delete"}},
		Spec:       v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: testServer, Path: testShare + "/shared"}}},
	}
	params := map[string]string{"pathPattern": "${.PVC.annotations.path}"}
	if _, err := f.provisionAs(claimIn("team-b", "child", map[string]string{"path": "shared/child"}), params, "pvc-child", true); err != nil {
		t.Fatal(err)
	}
	f.write("shared/child/data", "team-b's data")
	if err := f.prov.Delete(context.Background(), parent); err == nil {
		t.Error("Delete of the parent succeeded while a volume inside it was new; want a retry")
	}
	f.mustHave("shared/child/data", "team-b's data")
}

// A Provision inside a directory that a Delete is working on waits for it.
func TestProvisionWaitsForDeleteOfParent(t *testing.T) {
	l := newPathLocks()
	tgt := testServer
	end, users := l.beginDelete(tgt, "/a", "pvc-a")
	if len(users) > 0 {
		t.Fatal(users)
	}
	if _, err := l.beginProvision(tgt, "/a/b/c", "pvc-c"); err == nil {
		t.Error("provision inside a directory being deleted was let through")
	}
	if _, err := l.beginProvision(tgt, "/ab/c", "pvc-c"); err != nil {
		t.Errorf("provision beside it held back: %v", err)
	}
	end()
	if _, err := l.beginProvision(tgt, "/a/b/c", "pvc-c"); err != nil {
		t.Errorf("after the delete: %v", err)
	}
	if _, users := l.beginDelete(tgt, "/a", "pvc-a"); len(users) != 1 {
		t.Errorf("delete of a with a/b/c new: users %v", users)
	}
	l.forgetVolume(tgt, "pvc-c") // what VolumeSeen does when the informer shows pvc-c
	if _, users := l.beginDelete(tgt, "/a", "pvc-a"); len(users) != 0 {
		t.Errorf("once the informer has pvc-c the index answers for it: users %v", users)
	}
	// A volume being deleted is no longer new: what it held back goes ahead.
	if _, err := l.beginProvision(tgt, "/x", "pvc-x"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.beginProvision(tgt, "/x/y", "pvc-y"); err == nil {
		t.Error("a volume inside one provisioned a moment ago was let through")
	}
	l.forgetVolume(tgt, "pvc-x")
	if _, err := l.beginProvision(tgt, "/x/y", "pvc-y"); err != nil {
		t.Errorf("after pvc-x's delete began: %v", err)
	}
}

// Defect 8: one server, several spellings. A static PV on "nfs.example."
// inside the directory being deleted keeps it.
func TestDeleteSeesOtherSpellingsOfTheServer(t *testing.T) {
	for _, spelling := range []string{"nfs.example.", "NFS.Example", " nfs.example"} {
		f, pv := deleteWith(t, map[string]string{"onDelete": "delete"})
		dir := pv.Annotations[AnnDirectory]
		f.write(dir+"/sub/data", "static volume's data")
		f.pvs.Add(&v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "static"},
			Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: spelling, Path: testShare + "/" + dir + "/sub"}}}})
		if err := f.prov.Delete(context.Background(), pv); err != nil {
			t.Fatal(err)
		}
		f.mustHave(dir+"/sub/data", "static volume's data")
	}
}

// Defect 10: the class decides which uids, gids and modes claims may ask for.
func TestClaimOwnerPolicy(t *testing.T) {
	f := newFixture(t)
	class := map[string]string{"claimUIDs": "1000-1999,2500", "claimGIDs": "none", "claimMode": "none"}
	for _, tc := range []struct {
		ann   map[string]string
		param string
	}{
		{map[string]string{AnnDirectoryUID: "0"}, "claimUIDs"},
		{map[string]string{AnnDirectoryUID: "2000"}, "claimUIDs"},
		{map[string]string{AnnDirectoryGID: "1000"}, "claimGIDs"},
		{map[string]string{AnnDirectoryMode: "0777"}, "claimMode"},
	} {
		_, err := f.provisionAs(claimIn("t", "c", tc.ann), class, "pvc-x", true)
		if err == nil || !strings.Contains(err.Error(), tc.param) {
			t.Errorf("annotations %v: %v, want a refusal naming %s", tc.ann, err, tc.param)
		}
	}
	for i, uid := range []string{"1000", "1999", "2500"} {
		if _, err := f.provisionAs(claimIn("t", "ok"+uid, map[string]string{AnnDirectoryUID: uid}), class, "pvc-ok-"+string(rune('a'+i)), true); err != nil {
			t.Errorf("uid %s is in range: %v", uid, err)
		}
	}
	// The default honours every annotation, as the anchor project did.
	if _, err := f.provisionAs(claimIn("t", "root", map[string]string{AnnDirectoryUID: "0", AnnDirectoryMode: "0700"}), nil, "pvc-root", true); err != nil {
		t.Errorf("default policy: %v", err)
	}
	for _, bad := range []string{"1000-", "x", "2000-1000", "any,5"} {
		if _, err := ParseClassOptions(map[string]string{"claimUIDs": bad}); err == nil {
			t.Errorf("claimUIDs=%q accepted", bad)
		}
	}
}

// A claim asking for a copy of something is refused, never bound empty.
func TestDataSourceRefused(t *testing.T) {
	f := newFixture(t)
	for kind, words := range map[string]string{"PersistentVolumeClaim": "clon", "VolumeSnapshot": "CSI driver", "Thing": "cannot fill"} {
		claim := newClaim(nil)
		claim.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: kind, Name: "src"}
		_, state, err := f.provision(claim, newClass(nil))
		if err == nil || state != controller.ProvisioningFinished || !strings.Contains(err.Error(), words) {
			t.Errorf("data source %s: %v (%s), want a refusal saying %q", kind, err, state, words)
		}
	}
	if got := f.entries(f.dir); len(got) != 0 {
		t.Errorf("directories made for refused claims: %v", got)
	}
}

// Two volumes provisioned a moment apart, neither in the informer yet,
// never nest: the second is held back.
func TestRecentVolumesNeverNest(t *testing.T) {
	f := newFixture(t)
	params := map[string]string{"pathPattern": "${.PVC.annotations.path}"}
	if _, err := f.provisionAs(claimIn("evil", "first", map[string]string{"path": "v"}), params, "pvc-evil", true); err != nil {
		t.Fatal(err)
	}
	scoped := map[string]string{"pathPattern": "${.PVC.namespace}/${.PVC.name}"}
	_, state, err := f.prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: newClass(scoped), PVName: "pvc-v", PVC: claimIn("v", "data", nil)})
	if err == nil || !strings.Contains(err.Error(), "pvc-evil") || state != controller.ProvisioningNoChange {
		t.Errorf("a claim inside a volume provisioned a moment ago: %v (%s), want it held back", err, state)
	}
}

// Exports nested on one server: a class whose export lies inside a
// tenant's volume of another class gets no volume there.
func TestNestedExportsSeeEachOther(t *testing.T) {
	f := newFixture(t)
	pv, err := f.provisionAs(claimIn("team", "vol", map[string]string{"path": "team"}), map[string]string{"pathPattern": "${.PVC.annotations.path}"}, "pvc-team", false)
	if err != nil {
		t.Fatal(err)
	}
	f.prov.cfg.Opener.(*exports).dirs[testServer+":"+testShare+"/team"] = filepath.Join(f.dir, "team")
	_, err = f.provisionAs(claimIn("other", "data", nil), map[string]string{"share": testShare + "/team"}, "pvc-other", false)
	wantRefusal(t, err, pv.Name)
	// An admin's static volume over a whole export is not a tenant's: it is not counted.
	f.pvs.Add(&v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "admin-whole-export"},
		Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: testServer, Path: testShare}}}})
	if _, err := f.provisionAs(claimIn("other", "data2", nil), nil, "pvc-other2", false); err != nil {
		t.Errorf("a static PV over the export root blocked provisioning: %v", err)
	}
}

// Shared parents get the class's owner and mode, not those one claim asked
// for: the first claim of a namespace must not lock the others out.
func TestParentsGetTheClassOwner(t *testing.T) {
	f := newFixture(t)
	params := map[string]string{"pathPattern": "${.PVC.namespace}/${.PVC.name}", "uid": "2000", "mode": "0755"}
	if _, err := f.provisionAs(claimIn("ns", "a", map[string]string{AnnDirectoryUID: "5000", AnnDirectoryMode: "0700"}), params, "pvc-a", false); err != nil {
		t.Fatal(err)
	}
	if mode, uid, _ := statOwner(t, filepath.Join(f.dir, "ns")); mode != 0o755 || uid != 2000 {
		t.Errorf("parent ns: mode %04o uid %d, want the class's 0755 and 2000", mode, uid)
	}
	if mode, uid, _ := statOwner(t, filepath.Join(f.dir, "ns", "a")); mode != 0o700 || uid != 5000 {
		t.Errorf("the claim's directory: mode %04o uid %d, want 0700 and 5000", mode, uid)
	}
}

// A default name so long it is shortened (the PV name only in its hash)
// is still the claim's own: the retry after a lost reply takes it, even
// where the class reuses nothing.
func TestRetryAfterLostReplyLongName(t *testing.T) {
	f := newFixture(t)
	inner, _ := f.prov.cfg.Opener.Open(context.Background(), testServer, testShare)
	f.prov.cfg.Opener = fsOpener{&lostReplyFS{FS: inner}}
	claim := claimIn(strings.Repeat("n", 63), strings.Repeat("c", 200), map[string]string{AnnDirectoryMode: "2775"})
	class := newClass(map[string]string{"reuseDirectory": "never"})
	opts := controller.ProvisionOptions{StorageClass: class, PVName: testPV, PVC: claim}
	if _, _, err := f.prov.Provision(context.Background(), opts); err == nil {
		t.Fatal("first attempt succeeded")
	}
	f.prov.gate = newServerGate()
	pv, _, err := f.prov.Provision(context.Background(), opts)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if mode, _, _ := statOwner(t, filepath.Join(f.dir, pv.Annotations[AnnDirectory])); mode != 0o2775 {
		t.Errorf("mode %04o after the retry, want 2775", mode)
	}
}

// A long removal is never the server gate's probe: other operations on the
// server go on while it runs.
type slowRemoveFS struct {
	export.FS
	entered, release chan struct{}
}

func (s slowRemoveFS) RemoveAll(ctx context.Context, p string, progress func(export.Removed)) error {
	close(s.entered)
	<-s.release
	return s.FS.RemoveAll(ctx, p, progress)
}

type fsOpener struct{ fs export.FS }

func (o fsOpener) Open(context.Context, string, string) (export.FS, error) { return o.fs, nil }

func TestLongRemovalIsNotTheGateProbe(t *testing.T) {
	f, pv := deleteWith(t, map[string]string{"onDelete": "delete"})
	inner, _ := f.prov.cfg.Opener.Open(context.Background(), testServer, testShare)
	slow := slowRemoveFS{FS: inner, entered: make(chan struct{}), release: make(chan struct{})}
	f.prov.cfg.Opener = fsOpener{slow}
	// The server had stopped answering; its back-off has passed: the next operation is the probe.
	f.prov.gate.leave(testServer, false, context.DeadlineExceeded)
	f.prov.gate.servers[testServer].openUntil = time.Now()
	done := make(chan error, 1)
	go func() { done <- f.prov.Delete(context.Background(), pv) }()
	<-slow.entered
	probe, err := f.prov.gate.enter(testServer)
	if err != nil {
		t.Errorf("while a removal runs, other operations on its server are turned away: %v", err)
	}
	f.prov.gate.leave(testServer, probe, nil)
	close(slow.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A volume whose PV the API server keeps refusing (the library retries
// saving it for as long as it takes) still holds its directory minutes
// later; the record goes when the PV reaches the informer.
func TestRecordKeptUntilPVSeen(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	f.prov.locks.now = func() time.Time { return now }
	if _, err := f.prov.locks.beginProvision(testServer, testShare+"/ns/x", "pvc-b"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Minute)
	if _, err := f.prov.locks.beginProvision(testServer, testShare+"/ns/x/inner", "pvc-c"); err == nil {
		t.Fatal("ten minutes on, an unsaved volume's directory no longer held")
	}
	f.prov.VolumeSeen(&v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-b"},
		Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: testServer, Path: testShare + "/ns/x"}}}})
	if _, err := f.prov.locks.beginProvision(testServer, testShare+"/ns/x/inner", "pvc-c"); err != nil {
		t.Errorf("once the PV is in the informer the index answers for it: %v", err)
	}
}

// lostMkdirReply is an export whose Mkdir answers as the wire backend's repeat does after the
// first attempt's reply was lost: ErrExist marked ErrMaybeDone, whether the first attempt made
// the directory or found one there. before, when set, runs in between (another writer racing
// into the new directory).
type lostMkdirReply struct {
	export.Opener
	before func(dir string)
}

type lostMkdirFS struct {
	export.FS
	before func(dir string)
}

func (o lostMkdirReply) Open(ctx context.Context, server, share string) (export.FS, error) {
	fsys, err := o.Opener.Open(ctx, server, share)
	return lostMkdirFS{fsys, o.before}, err
}

func (f lostMkdirFS) Mkdir(ctx context.Context, dir string, a export.DirAttrs) error {
	if err := f.FS.Mkdir(ctx, dir, a); err != nil && !errors.Is(err, export.ErrExist) {
		return err
	}
	if f.before != nil {
		f.before(dir)
	}
	return fmt.Errorf("mkdir %s: %w", dir, errors.Join(export.ErrExist, export.ErrMaybeDone))
}

// A Mkdir whose reply was lost made the claim's directory: the claim gets it, whatever the
// pattern; but a directory that was there before, or one someone wrote into meanwhile, is
// judged by the reuse rules as any existing directory is.
func TestLostMkdirReply(t *testing.T) {
	unscoped := map[string]string{"pathPattern": "${.PVC.annotations.path}"}
	t.Run("made by the lost attempt", func(t *testing.T) {
		f := newFixture(t)
		f.prov.cfg.Opener = lostMkdirReply{Opener: f.prov.cfg.Opener}
		pv, err := f.provisionAs(claimIn("team-a", "data", map[string]string{"path": "shared/vol"}), unscoped, "pvc-1", false)
		if err != nil {
			t.Fatalf("the claim's own directory, made by a Mkdir whose reply was lost: %v", err)
		}
		if pv.Annotations[AnnDirectory] != "shared/vol" {
			t.Errorf("directory %s", pv.Annotations[AnnDirectory])
		}
		if events := strings.Join(drain(f), "\n"); strings.Contains(events, ReasonDirectoryReused) {
			t.Errorf("a DirectoryReused Event for a directory this claim made: %s", events)
		}
	})
	t.Run("there before", func(t *testing.T) {
		f := newFixture(t)
		f.prov.cfg.Opener = lostMkdirReply{Opener: f.prov.cfg.Opener}
		// Another tenant's retained, empty directory, owned and moded as the class would.
		if err := os.MkdirAll(filepath.Join(f.dir, "team-b-retained"), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(f.dir, "team-b-retained"), 0o777); err != nil {
			t.Fatal(err)
		}
		_, err := f.provisionAs(claimIn("evil", "grab", map[string]string{"path": "team-b-retained"}), unscoped, "pvc-2", false)
		wantRefusal(t, err, "namespace", "reuseDirectory")
	})
	t.Run("written into meanwhile", func(t *testing.T) {
		f := newFixture(t)
		f.prov.cfg.Opener = lostMkdirReply{Opener: f.prov.cfg.Opener, before: func(dir string) {
			f.write(dir+"/planted", "not the claim's")
		}}
		_, err := f.provisionAs(claimIn("team-a", "data", map[string]string{"path": "shared/vol"}), unscoped, "pvc-3", false)
		wantRefusal(t, err, "namespace", "reuseDirectory")
		f.mustHave("shared/vol/planted", "not the claim's")
	})
}

// callLogFS counts the calls made to an export.
type callLogFS struct {
	export.FS
	calls *[]string
}

func (c callLogFS) Mkdir(ctx context.Context, dir string, a export.DirAttrs) error {
	*c.calls = append(*c.calls, "Mkdir")
	return c.FS.Mkdir(ctx, dir, a)
}

func (c callLogFS) Stat(ctx context.Context, p string) (export.Info, error) {
	*c.calls = append(*c.calls, "Stat")
	return c.FS.Stat(ctx, p)
}

type callLogOpener struct {
	export.Opener
	calls *[]string
}

func (o callLogOpener) Open(ctx context.Context, server, share string) (export.FS, error) {
	fsys, err := o.Opener.Open(ctx, server, share)
	return callLogFS{fsys, o.calls}, err
}

// A claim of the default naming costs one MKDIR and nothing else (its path is its own, so nothing
// need be looked at first); a path others could have is looked at before it is made.
func TestProvisionCalls(t *testing.T) {
	for _, tc := range []struct {
		params map[string]string
		want   string
	}{
		{nil, "Mkdir"},
		{map[string]string{"pathPattern": "${.PVC.annotations.path}"}, "Stat Mkdir"},
	} {
		f := newFixture(t)
		var calls []string
		f.prov.cfg.Opener = callLogOpener{f.prov.cfg.Opener, &calls}
		if _, err := f.provisionAs(claimIn("team-a", "data", map[string]string{"path": "vol"}), tc.params, "pvc-1", true); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(calls, " "); got != tc.want {
			t.Errorf("pattern %v: calls %q, want %q", tc.params, got, tc.want)
		}
	}
}
