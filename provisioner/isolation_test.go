package provisioner_test

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
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/internal/provtest"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// Tenant isolation: one claim never reaches another's data, whatever its
// namespace's name, its labels and annotations, or the timing.

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
			provtest.ClaimIn("team-a", "data", nil), provtest.ClaimIn("archived-team-a", "data", nil), "archived-team-a-data"},
		{"annotation naming the archive", "${.PVC.namespace}/${.PVC.annotations.path}",
			provtest.ClaimIn("team-a", "data", map[string]string{"path": "data"}), provtest.ClaimIn("team-a", "new", map[string]string{"path": "archived-data"}), "team-a/archived-data"},
	} {
		for _, reuse := range []string{"", "any"} {
			t.Run(tc.name+" reuse="+reuse, func(t *testing.T) {
				f := provtest.New(t, provtest.Options{})
				params := map[string]string{"pathPattern": tc.pattern}
				if reuse != "" { // even a class that lets tenants share directories never hands out an archive
					params["reuseDirectory"] = reuse
				}
				pv, err := f.ProvisionAs(tc.victim, params, "pvc-victim", false)
				if err != nil {
					t.Fatal(err)
				}
				f.Write(pv.Annotations[volume.AnnDirectory]+"/secret", "team-a's data")
				if err := f.Prov.Delete(context.Background(), pv); err != nil {
					t.Fatal(err)
				}
				f.PVs.Delete(pv)
				f.MustHave(tc.archive+"/secret", "team-a's data")
				_, err = f.ProvisionAs(tc.attacker, params, "pvc-attacker", false)
				provtest.WantRefusal(t, err, "archive", "pathPattern")
			})
		}
	}
}

// A pattern whose first element is not the namespace lets annotations name
// any path: an existing directory there is refused unless the class says
// every tenant may share (reuseDirectory=any).
func TestReuseOnlyWithinNamespace(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	f.Write("team-a-retained/secret", "team-a's data")
	unscoped := map[string]string{"pathPattern": "${.PVC.annotations.path}"}
	_, err := f.ProvisionAs(provtest.ClaimIn("evil", "grab", map[string]string{"path": "team-a-retained"}), unscoped, "pvc-1", false)
	provtest.WantRefusal(t, err, "namespace", "reuseDirectory")
	f.MustHave("team-a-retained/secret", "team-a's data")

	// Namespace-scoped: a claim made again in the same namespace gets its directory back.
	f.Write("team-a/data/kept", "still here")
	scoped := map[string]string{"pathPattern": "${.PVC.namespace}/${.PVC.name}"}
	pv, err := f.ProvisionAs(provtest.ClaimIn("team-a", "data", nil), scoped, "pvc-2", false)
	if err != nil {
		t.Fatalf("re-created claim in its own namespace: %v", err)
	}
	if pv.Annotations[volume.AnnDirectory] != "team-a/data" {
		t.Errorf("directory %s", pv.Annotations[volume.AnnDirectory])
	}
	if !strings.Contains(strings.Join(drain(f), "\n"), provisioner.ReasonDirectoryReused) {
		t.Error("no DirectoryReused Event")
	}
	f.MustHave("team-a/data/kept", "still here")

	never := map[string]string{"pathPattern": "${.PVC.namespace}/${.PVC.name}", "reuseDirectory": "never"}
	f.Write("team-b/data/kept", "x")
	_, err = f.ProvisionAs(provtest.ClaimIn("team-b", "data", nil), never, "pvc-3", false)
	provtest.WantRefusal(t, err, "reuseDirectory=never")

	any := map[string]string{"pathPattern": "${.PVC.annotations.path}", "reuseDirectory": "any"}
	if _, err := f.ProvisionAs(provtest.ClaimIn("evil", "grab2", map[string]string{"path": "team-a-retained"}), any, "pvc-4", false); err != nil {
		t.Errorf("reuseDirectory=any: %v", err)
	}
}

func drain(f *provtest.Fixture) []string {
	var out []string
	for {
		select {
		case e := <-f.Recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// A claim's directory is never one a live PV uses, inside one, or around one.
func TestClaimNotPlacedOnOrInsideAnotherVolume(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	unscoped := map[string]string{"pathPattern": "${.PVC.annotations.path}", "reuseDirectory": "any"}
	if _, err := f.ProvisionAs(provtest.ClaimIn("team-a", "data", map[string]string{"path": "vols/a"}), unscoped, "pvc-a", false); err != nil {
		t.Fatal(err)
	}
	f.Write("vols/a/secret", "team-a's data")
	for _, path := range []string{"vols/a", "vols/a/inside", "vols"} {
		_, err := f.ProvisionAs(provtest.ClaimIn("evil", "x", map[string]string{"path": path}), unscoped, "pvc-evil", false)
		provtest.WantRefusal(t, err, "pvc-a")
	}
	f.MustHave("vols/a/secret", "team-a's data")
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
	f := provtest.New(t, provtest.Options{})
	inner, _ := f.Opener.Get().Open(context.Background(), provtest.Server, provtest.Share)
	f.Opener.Set(fsOpener{&lostReplyFS{FS: inner}})
	claim := provtest.Claim(map[string]string{class.AnnDirectoryMode: "2775", class.AnnDirectoryGID: "3000"})
	if _, state, err := f.Provision(claim, provtest.Class(nil)); err == nil || state != controller.ProvisioningInBackground {
		t.Fatalf("first attempt: %v (state %s), want a timeout in background", err, state)
	}
	f.PassBackoff() // the retry comes after the gate's back-off
	f.MustProvision(claim, provtest.Class(nil))
	mode, _, gid := provtest.StatOwner(t, filepath.Join(f.Dir, "default-data-"+provtest.PV))
	if mode != 0o2775 || gid != 3000 {
		t.Errorf("after the retry: mode %04o gid %d, want 2775 and 3000", mode, gid)
	}
}

// Defect 6: the PV of a claim provisioned a moment ago inside the
// directory being deleted is not in the informer yet; the Delete must
// leave the directory alone.
func TestDeleteWaitsForNestedProvision(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	// The parent: a PV of this provisioner the informer does not show yet.
	if err := os.MkdirAll(filepath.Join(f.Dir, "shared"), 0o777); err != nil {
		t.Fatal(err)
	}
	parent := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-parent", Annotations: map[string]string{volume.AnnShare: provtest.Share, volume.AnnDirectory: "shared", volume.AnnOnDelete: "delete"}},
		Spec:       v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: provtest.Server, Path: provtest.Share + "/shared"}}},
	}
	params := map[string]string{"pathPattern": "${.PVC.annotations.path}"}
	if _, err := f.ProvisionAs(provtest.ClaimIn("team-b", "child", map[string]string{"path": "shared/child"}), params, "pvc-child", true); err != nil {
		t.Fatal(err)
	}
	f.Write("shared/child/data", "team-b's data")
	if err := f.Prov.Delete(context.Background(), parent); err == nil {
		t.Error("Delete of the parent succeeded while a volume inside it was new; want a retry")
	}
	f.MustHave("shared/child/data", "team-b's data")
}

// Defect 8: one server, several spellings. A static PV on "nfs.example."
// inside the directory being deleted keeps it.
func TestDeleteSeesOtherSpellingsOfTheServer(t *testing.T) {
	for _, spelling := range []string{"nfs.example.", "NFS.Example", " nfs.example"} {
		f, pv := deleteWith(t, map[string]string{"onDelete": "delete"})
		dir := pv.Annotations[volume.AnnDirectory]
		f.Write(dir+"/sub/data", "static volume's data")
		f.PVs.Add(&v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "static"},
			Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: spelling, Path: provtest.Share + "/" + dir + "/sub"}}}})
		if err := f.Prov.Delete(context.Background(), pv); err != nil {
			t.Fatal(err)
		}
		f.MustHave(dir+"/sub/data", "static volume's data")
	}
}

// Defect 10: the class decides which uids, gids and modes claims may ask for.
func TestClaimOwnerPolicy(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	params := map[string]string{"claimUIDs": "1000-1999,2500", "claimGIDs": "none", "claimMode": "none"}
	for _, tc := range []struct {
		ann   map[string]string
		param string
	}{
		{map[string]string{class.AnnDirectoryUID: "0"}, "claimUIDs"},
		{map[string]string{class.AnnDirectoryUID: "2000"}, "claimUIDs"},
		{map[string]string{class.AnnDirectoryGID: "1000"}, "claimGIDs"},
		{map[string]string{class.AnnDirectoryMode: "0777"}, "claimMode"},
	} {
		_, err := f.ProvisionAs(provtest.ClaimIn("t", "c", tc.ann), params, "pvc-x", true)
		if err == nil || !strings.Contains(err.Error(), tc.param) {
			t.Errorf("annotations %v: %v, want a refusal naming %s", tc.ann, err, tc.param)
		}
	}
	for i, uid := range []string{"1000", "1999", "2500"} {
		if _, err := f.ProvisionAs(provtest.ClaimIn("t", "ok"+uid, map[string]string{class.AnnDirectoryUID: uid}), params, "pvc-ok-"+string(rune('a'+i)), true); err != nil {
			t.Errorf("uid %s is in range: %v", uid, err)
		}
	}
	// The default honours every annotation, as the anchor project did.
	if _, err := f.ProvisionAs(provtest.ClaimIn("t", "root", map[string]string{class.AnnDirectoryUID: "0", class.AnnDirectoryMode: "0700"}), nil, "pvc-root", true); err != nil {
		t.Errorf("default policy: %v", err)
	}
	for _, bad := range []string{"1000-", "x", "2000-1000", "any,5"} {
		if _, err := class.Parse(map[string]string{"claimUIDs": bad}); err == nil {
			t.Errorf("claimUIDs=%q accepted", bad)
		}
	}
}

// A claim asking for a copy of something is refused, never bound empty.
func TestDataSourceRefused(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	for kind, words := range map[string]string{"PersistentVolumeClaim": "clon", "VolumeSnapshot": "CSI driver", "Thing": "cannot fill"} {
		claim := provtest.Claim(nil)
		claim.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: kind, Name: "src"}
		_, state, err := f.Provision(claim, provtest.Class(nil))
		if err == nil || state != controller.ProvisioningFinished || !strings.Contains(err.Error(), words) {
			t.Errorf("data source %s: %v (%s), want a refusal saying %q", kind, err, state, words)
		}
	}
	if got := f.Entries(f.Dir); len(got) != 0 {
		t.Errorf("directories made for refused claims: %v", got)
	}
}

// Two volumes provisioned a moment apart, neither in the informer yet,
// never nest: the second is held back.
func TestRecentVolumesNeverNest(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	params := map[string]string{"pathPattern": "${.PVC.annotations.path}"}
	if _, err := f.ProvisionAs(provtest.ClaimIn("evil", "first", map[string]string{"path": "v"}), params, "pvc-evil", true); err != nil {
		t.Fatal(err)
	}
	scoped := map[string]string{"pathPattern": "${.PVC.namespace}/${.PVC.name}"}
	_, state, err := f.Prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: provtest.Class(scoped), PVName: "pvc-v", PVC: provtest.ClaimIn("v", "data", nil)})
	if err == nil || !strings.Contains(err.Error(), "pvc-evil") || state != controller.ProvisioningNoChange {
		t.Errorf("a claim inside a volume provisioned a moment ago: %v (%s), want it held back", err, state)
	}
}

// Exports nested on one server: a class whose export lies inside a
// tenant's volume of another class gets no volume there.
func TestNestedExportsSeeEachOther(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	pv, err := f.ProvisionAs(provtest.ClaimIn("team", "vol", map[string]string{"path": "team"}), map[string]string{"pathPattern": "${.PVC.annotations.path}"}, "pvc-team", false)
	if err != nil {
		t.Fatal(err)
	}
	f.Exports.Add(provtest.Server, provtest.Share+"/team", filepath.Join(f.Dir, "team"))
	_, err = f.ProvisionAs(provtest.ClaimIn("other", "data", nil), map[string]string{"share": provtest.Share + "/team"}, "pvc-other", false)
	provtest.WantRefusal(t, err, pv.Name)
	// An admin's static volume over a whole export is not a tenant's: it is not counted.
	f.PVs.Add(&v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "admin-whole-export"},
		Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: provtest.Server, Path: provtest.Share}}}})
	if _, err := f.ProvisionAs(provtest.ClaimIn("other", "data2", nil), nil, "pvc-other2", false); err != nil {
		t.Errorf("a static PV over the export root blocked provisioning: %v", err)
	}
}

// Shared parents get the class's owner and mode, not those one claim asked
// for: the first claim of a namespace must not lock the others out.
func TestParentsGetTheClassOwner(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	params := map[string]string{"pathPattern": "${.PVC.namespace}/${.PVC.name}", "uid": "2000", "mode": "0755"}
	if _, err := f.ProvisionAs(provtest.ClaimIn("ns", "a", map[string]string{class.AnnDirectoryUID: "5000", class.AnnDirectoryMode: "0700"}), params, "pvc-a", false); err != nil {
		t.Fatal(err)
	}
	if mode, uid, _ := provtest.StatOwner(t, filepath.Join(f.Dir, "ns")); mode != 0o755 || uid != 2000 {
		t.Errorf("parent ns: mode %04o uid %d, want the class's 0755 and 2000", mode, uid)
	}
	if mode, uid, _ := provtest.StatOwner(t, filepath.Join(f.Dir, "ns", "a")); mode != 0o700 || uid != 5000 {
		t.Errorf("the claim's directory: mode %04o uid %d, want 0700 and 5000", mode, uid)
	}
}

// A default name so long it is shortened (the PV name only in its hash)
// is still the claim's own: the retry after a lost reply takes it, even
// where the class reuses nothing.
func TestRetryAfterLostReplyLongName(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	inner, _ := f.Opener.Get().Open(context.Background(), provtest.Server, provtest.Share)
	f.Opener.Set(fsOpener{&lostReplyFS{FS: inner}})
	claim := provtest.ClaimIn(strings.Repeat("n", 63), strings.Repeat("c", 200), map[string]string{class.AnnDirectoryMode: "2775"})
	class := provtest.Class(map[string]string{"reuseDirectory": "never"})
	opts := controller.ProvisionOptions{StorageClass: class, PVName: provtest.PV, PVC: claim}
	if _, _, err := f.Prov.Provision(context.Background(), opts); err == nil {
		t.Fatal("first attempt succeeded")
	}
	f.PassBackoff()
	pv, _, err := f.Prov.Provision(context.Background(), opts)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if mode, _, _ := provtest.StatOwner(t, filepath.Join(f.Dir, pv.Annotations[volume.AnnDirectory])); mode != 0o2775 {
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
	inner, _ := f.Opener.Get().Open(context.Background(), provtest.Server, provtest.Share)
	slow := slowRemoveFS{FS: inner, entered: make(chan struct{}), release: make(chan struct{})}
	f.Opener.Set(fsOpener{slow})
	// The server had stopped answering; its back-off has passed: the next operation is the probe.
	f.Gate.Do(context.Background(), provtest.Server, provtest.Share, time.Second, func(context.Context, export.FS) error { return context.DeadlineExceeded })
	f.PassBackoff()
	done := make(chan error, 1)
	go func() { done <- f.Prov.Delete(context.Background(), pv) }()
	<-slow.entered
	err := f.Gate.Do(context.Background(), provtest.Server, provtest.Share, time.Second, func(context.Context, export.FS) error { return nil })
	if err != nil {
		t.Errorf("while a removal runs, other operations on its server are turned away: %v", err)
	}
	close(slow.release)
	if err := <-done; err != nil {
		t.Fatal(err)
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
		f := provtest.New(t, provtest.Options{})
		f.Opener.Set(lostMkdirReply{Opener: f.Opener.Get()})
		pv, err := f.ProvisionAs(provtest.ClaimIn("team-a", "data", map[string]string{"path": "shared/vol"}), unscoped, "pvc-1", false)
		if err != nil {
			t.Fatalf("the claim's own directory, made by a Mkdir whose reply was lost: %v", err)
		}
		if pv.Annotations[volume.AnnDirectory] != "shared/vol" {
			t.Errorf("directory %s", pv.Annotations[volume.AnnDirectory])
		}
		if events := strings.Join(drain(f), "\n"); strings.Contains(events, provisioner.ReasonDirectoryReused) {
			t.Errorf("a DirectoryReused Event for a directory this claim made: %s", events)
		}
	})
	t.Run("there before", func(t *testing.T) {
		f := provtest.New(t, provtest.Options{})
		f.Opener.Set(lostMkdirReply{Opener: f.Opener.Get()})
		// Another tenant's retained, empty directory, owned and moded as the class would.
		if err := os.MkdirAll(filepath.Join(f.Dir, "team-b-retained"), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(f.Dir, "team-b-retained"), 0o777); err != nil {
			t.Fatal(err)
		}
		_, err := f.ProvisionAs(provtest.ClaimIn("evil", "grab", map[string]string{"path": "team-b-retained"}), unscoped, "pvc-2", false)
		provtest.WantRefusal(t, err, "namespace", "reuseDirectory")
	})
	t.Run("written into meanwhile", func(t *testing.T) {
		f := provtest.New(t, provtest.Options{})
		f.Opener.Set(lostMkdirReply{Opener: f.Opener.Get(), before: func(dir string) {
			f.Write(dir+"/planted", "not the claim's")
		}})
		_, err := f.ProvisionAs(provtest.ClaimIn("team-a", "data", map[string]string{"path": "shared/vol"}), unscoped, "pvc-3", false)
		provtest.WantRefusal(t, err, "namespace", "reuseDirectory")
		f.MustHave("shared/vol/planted", "not the claim's")
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
		f := provtest.New(t, provtest.Options{})
		var calls []string
		f.Opener.Set(callLogOpener{f.Opener.Get(), &calls})
		if _, err := f.ProvisionAs(provtest.ClaimIn("team-a", "data", map[string]string{"path": "vol"}), tc.params, "pvc-1", true); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(calls, " "); got != tc.want {
			t.Errorf("pattern %v: calls %q, want %q", tc.params, got, tc.want)
		}
	}
}

// A volume whose PV has not reached the informer (the API server keeps refusing it) still holds
// its directory; the record goes when the PV informer sees it.
func TestRecordKeptUntilPVSeen(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	nested := map[string]string{"pathPattern": "${.PVC.annotations.path}"}
	b, err := f.ProvisionAs(provtest.ClaimIn("ns", "b", map[string]string{"path": "ns/x"}), nested, "pvc-b", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ProvisionAs(provtest.ClaimIn("ns", "c", map[string]string{"path": "ns/x/inner"}), nested, "pvc-c", true); err == nil {
		t.Fatal("a claim was placed inside a volume whose PV the informer has not seen yet")
	}
	f.Prov.VolumeSeen(b)
	if err := f.PVs.Add(b); err != nil {
		t.Fatal(err)
	}
	_, err = f.ProvisionAs(provtest.ClaimIn("ns", "c", map[string]string{"path": "ns/x/inner"}), nested, "pvc-c", true)
	provtest.WantRefusal(t, err, "pvc-b") // now the index refuses it, for good
}
