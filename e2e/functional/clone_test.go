//go:build e2e

package functional

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// Clones on the real control plane and Ganesha: a claim whose data source is a claim of this
// provisioner gets a copy of its tree, checked object by object on the export; refusals say what
// to change and make nothing; a source deleted during the copy stays until the copy is done and is
// never touched; a provisioner killed in the middle of a copy converges after a restart, leaving
// nothing behind.

const (
	cloneFinalizer = "nfs-subdir-provisioner.io/clone-source-protection"
	stagingDir     = ".nfsp-clones"
)

func TestClone(t *testing.T) {
	t.Run("populated claim, file by file", clonePopulated)
	t.Run("refusals", cloneRefusals)
	t.Run("source deleted during the copy", cloneSourceDeleted)
}

func pvcSource(name string) *corev1.TypedLocalObjectReference {
	return &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: name}
}

// populate writes a tree with every kind of object a copy must keep into dir.
func populate(t *testing.T, dir string) {
	t.Helper()
	old := time.Date(2020, 1, 2, 3, 4, 5, 600, time.UTC)
	files := []struct {
		path, data string
		mode       os.FileMode
		uid, gid   int
	}{
		{"hello.txt", "hello, clone\n", 0o640, 1234, 5678},
		{"bin/run.sh", "#!/bin/sh\necho run\n", 0o755, 0, 0},
		{"a/b/c/deep.txt", strings.Repeat("deep ", 1000), 0o600, 1000, 1000},
		{"a/empty", "", 0o444, 1000, 1000},
		{"big.bin", strings.Repeat("0123456789abcdef", 200000), 0o644, 2000, 2000}, // 3.2 MB: several chunks
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, f.uid, f.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range [][2]string{{"escape", "/etc/passwd"}, {"a/up", "../hello.txt"}, {"dangling", "no/such/thing"}} {
		if err := os.Symlink(l[1], filepath.Join(dir, l[0])); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "a/b"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "a/b"), 0o2750); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a/b/c", "a/b", "a", "bin"} {
		if err := os.Chtimes(filepath.Join(dir, d), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// assertSameTree compares the trees at want and got object by object: type, content, link
// target, mode, owner and modification time (links: target and owner; the top directory: only
// what it holds, its owner and mode being the new claim's).
func assertSameTree(t *testing.T, want, got string) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		seen[rel] = true
		if rel == "." {
			return nil
		}
		w, err := os.Lstat(p)
		if err != nil {
			return err
		}
		g, err := os.Lstat(filepath.Join(got, rel))
		if err != nil {
			t.Errorf("%s: missing from the copy: %v", rel, err)
			return nil
		}
		ws, gs := statOf(w), statOf(g)
		if w.Mode().Type() != g.Mode().Type() || ws.Uid != gs.Uid || ws.Gid != gs.Gid {
			t.Errorf("%s: copy is %v %d:%d, want %v %d:%d", rel, g.Mode().Type(), gs.Uid, gs.Gid, w.Mode().Type(), ws.Uid, ws.Gid)
		}
		switch {
		case w.Mode()&fs.ModeSymlink != 0:
			wl, _ := os.Readlink(p)
			gl, _ := os.Readlink(filepath.Join(got, rel))
			if wl != gl {
				t.Errorf("%s: copy links to %q, want %q", rel, gl, wl)
			}
			return nil
		case w.Mode().IsRegular():
			wd, _ := os.ReadFile(p)
			gd, _ := os.ReadFile(filepath.Join(got, rel))
			if !bytes.Equal(wd, gd) {
				t.Errorf("%s: copy holds %d bytes that differ from the source's %d", rel, len(gd), len(wd))
			}
		}
		if ws.Mode&0o7777 != gs.Mode&0o7777 {
			t.Errorf("%s: copy has mode %04o, want %04o", rel, gs.Mode&0o7777, ws.Mode&0o7777)
		}
		if !w.ModTime().Equal(g.ModTime()) {
			t.Errorf("%s: copy modified %s, want %s", rel, g.ModTime(), w.ModTime())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if rel, _ := filepath.Rel(got, p); err == nil && !seen[rel] {
			t.Errorf("%s: in the copy, not in the source", rel)
		}
		return nil
	})
}

// staged lists the copies of pv in the export's staging directories (one per install).
func staged(t *testing.T, pv string) []string {
	t.Helper()
	found, err := filepath.Glob(filepath.Join(fw.DefaultExport().LocalDir, stagingDir, "*", pv+".*"))
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// assertNoStaging checks that no copy is left in the export's staging directory for pv.
func assertNoStaging(t *testing.T, pv string) {
	t.Helper()
	if left := staged(t, pv); len(left) != 0 {
		t.Errorf("staging left behind: %v", left)
	}
}

func assertReleased(t *testing.T, namespace, name string) {
	t.Helper()
	framework.Poll(t, fmt.Sprintf("claim %s/%s to lose the clone finalizer", namespace, name), time.Minute, func(ctx context.Context) (bool, error) {
		claim, err := fw.Cluster.Clientset.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return !slices.Contains(claim.Finalizers, cloneFinalizer), fmt.Errorf("finalizers %v", claim.Finalizers)
	})
}

func clonePopulated(t *testing.T) {
	class := fw.CreateClass(t, framework.ClassOptions{})
	ns := fw.CreateNamespace(t, "clone")
	fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "src", Class: class.Name})
	_, srcPV := fw.WaitClaimBound(t, ns, "src")
	srcDir := fw.DefaultExport().VolumeDir(t, srcPV)
	populate(t, srcDir)

	clone := fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "copy", Class: class.Name, DataSource: pvcSource("src")})
	_, pv := fw.WaitClaimBound(t, ns, "copy")
	dir := fw.DefaultExport().VolumeDir(t, pv)
	assertSameTree(t, srcDir, dir)
	framework.AssertDir(t, dir, framework.DirAttrs{Mode: 0o777, UID: 0, GID: 0}) // a new claim's top directory
	fw.WaitEvent(t, clone, corev1.EventTypeNormal, "CloneStarted", "src")
	fw.WaitEvent(t, clone, corev1.EventTypeNormal, "CloneFinished", "5 files", "3 symlinks")
	assertReleased(t, ns, "src")
	assertNoStaging(t, pv.Name)
	ctx := framework.Context(t)
	copied, err := provisioner.Metric(ctx, "nfs_subdir_provisioner_clone_copied_bytes_total", map[string]string{"server": fw.Env.NFSServer})
	if err != nil || copied < 3200000 {
		t.Errorf("clone_copied_bytes_total = %v (%v), want at least the 3.2 MB copied", copied, err)
	}
	if n, err := provisioner.Metric(ctx, "nfs_subdir_provisioner_clone_duration_seconds", map[string]string{"result": "copied"}); err != nil || n < 1 {
		t.Errorf("clone_duration_seconds{result=copied} has %v observations (%v), want at least 1", n, err)
	}

	// The copy is a volume of its own: writing to it leaves the source as it was.
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("changed"), 0o640); err != nil {
		t.Fatal(err)
	}
	framework.AssertFileContent(t, filepath.Join(srcDir, "hello.txt"), "hello, clone\n")
}

// Every refusal is a Warning that says what to change; the claim stays Pending with no volume.
func cloneRefusals(t *testing.T) {
	class := fw.CreateClass(t, framework.ClassOptions{})
	shared := fw.CreateClass(t, framework.ClassOptions{Parameters: map[string]string{"pathPattern": "${.PVC.namespace}/${.PVC.name}"}})
	ns := fw.CreateNamespace(t, "clone-refused")
	fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "src", Class: class.Name})
	fw.WaitClaimBound(t, ns, "src")
	foreign := staticClaim(t, ns, "foreign")

	cases := []struct {
		name  string
		claim framework.ClaimOptions
		words []string
	}{
		{"larger source", framework.ClaimOptions{Class: class.Name, Size: "10Mi", DataSource: pvcSource("src")}, []string{"request at least 100Mi"}},
		{"not this provisioner's", framework.ClaimOptions{Class: class.Name, DataSource: pvcSource(foreign)}, []string{"not made by this provisioner"}},
		{"shared path pattern", framework.ClaimOptions{Class: shared.Name, DataSource: pvcSource("src")}, []string{"directory of its own", "${.PV.name}"}},
		{"snapshot", framework.ClaimOptions{Class: class.Name, DataSource: &corev1.TypedLocalObjectReference{
			APIGroup: ptr.To("snapshot.storage.k8s.io"), Kind: "VolumeSnapshot", Name: "snap"}}, []string{"snapshots need a CSI driver", "clone from a PersistentVolumeClaim"}},
		// dataSourceRef: the API server drops a dataSource of any other kind.
		{"other kind", framework.ClaimOptions{Class: class.Name, DataSourceRef: &corev1.TypedObjectReference{
			APIGroup: ptr.To("example.com"), Kind: "Thing", Name: "t"}}, []string{"cannot fill"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.claim.Name = fmt.Sprintf("refused-%d", i)
			claim := fw.CreateClaim(t, ns, c.claim)
			fw.WaitWarningEvent(t, claim, framework.FailureReason, c.words...)
			fw.AssertNoVolumeForClaim(t, claim)
		})
	}
	assertReleased(t, ns, "src")
}

// staticClaim binds a claim to a PV an administrator made by hand (no provisioner), on the export.
func staticClaim(t *testing.T, ns, name string) string {
	t.Helper()
	ctx := framework.Context(t)
	dir := filepath.Join(fw.DefaultExport().LocalDir, "static-"+ns)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "static-" + ns, Labels: map[string]string{framework.TestLabelKey: framework.TestLabelValue}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("100Mi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: name},
			PersistentVolumeSource: corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{
				Server: fw.Env.NFSServer, Path: fw.DefaultExport().NFSPath + "/static-" + ns}},
		},
	}
	if _, err := fw.Cluster.Clientset.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fw.Cluster.Clientset.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})
	fw.CreateClaim(t, ns, framework.ClaimOptions{Name: name, Class: ""})
	fw.WaitClaimBound(t, ns, name)
	return name
}

// bigSource makes a claim whose tree takes the copy a few seconds: files of 4 KiB in directories
// of 100.
func bigSource(t *testing.T, ns, class string, files int) string {
	t.Helper()
	fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "src", Class: class})
	_, pv := fw.WaitClaimBound(t, ns, "src")
	dir := fw.DefaultExport().VolumeDir(t, pv)
	data := bytes.Repeat([]byte("x"), 4096)
	for i := 0; i < files; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%05d", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// countFiles counts the regular files below dir.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// The source claim deleted while it is copied stays (Terminating, held by the clone's finalizer)
// until the copy is done, then goes; the copy is complete and the source's data was never touched:
// its directory is archived as it was.
func cloneSourceDeleted(t *testing.T) {
	const files = 5000 // a copy of some seconds: the deletion lands while it runs
	class := fw.CreateClass(t, framework.ClassOptions{})
	ns := fw.CreateNamespace(t, "clone-srcdel")
	srcDir := bigSource(t, ns, class.Name, files)
	clone := fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "copy", Class: class.Name, DataSource: pvcSource("src")})
	fw.WaitEvent(t, clone, corev1.EventTypeNormal, "CloneStarted")
	claims := fw.Cluster.Clientset.CoreV1().PersistentVolumeClaims(ns)
	if err := claims.Delete(framework.Context(t), "src", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	src, err := claims.Get(framework.Context(t), "src", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the source claim went at once, though its copy had started: %v", err)
	}
	if src.DeletionTimestamp == nil || !slices.Contains(src.Finalizers, cloneFinalizer) {
		t.Errorf("source claim during the copy: deletion %v, finalizers %v; want Terminating, held by %s", src.DeletionTimestamp, src.Finalizers, cloneFinalizer)
	}
	_, pv := fw.WaitClaimBound(t, ns, "copy")
	if n := countFiles(t, fw.DefaultExport().VolumeDir(t, pv)); n != files {
		t.Errorf("the copy holds %d files, want %d", n, files)
	}
	framework.Poll(t, "the source claim to be gone", framework.DeleteTimeout, func(ctx context.Context) (bool, error) {
		_, err := claims.Get(ctx, "src", metav1.GetOptions{})
		return err != nil, err
	})
	archives := framework.NamesWithPrefix(t, fw.DefaultExport().LocalDir, "archived-"+filepath.Base(srcDir))
	framework.Poll(t, "the source directory to be archived", framework.DeleteTimeout, func(context.Context) (bool, error) {
		archives = framework.NamesWithPrefix(t, fw.DefaultExport().LocalDir, "archived-"+filepath.Base(srcDir))
		return len(archives) == 1, fmt.Errorf("archives %v", archives)
	})
	archive := filepath.Join(fw.DefaultExport().LocalDir, archives[0])
	t.Cleanup(func() { os.RemoveAll(archive) })
	if n := countFiles(t, archive); n != files {
		t.Errorf("the source's archive holds %d files, want its %d untouched", n, files)
	}
	assertNoStaging(t, pv.Name)
}

// A provisioner SIGKILLed in the middle of two copies (two namespaces: copies of one namespace
// run one at a time) leaves their staging directories and the sources' finalizers; restarted, it
// starts the copy of the claim still there again and binds it, and its sweep removes what the copy
// of the claim deleted meanwhile left, and releases that claim's source.
func TestCloneProvisionerKilled(t *testing.T) {
	const files = 5000
	in := fw.NewInstance(t, "clone-kill")
	first := in.Start(t, true)
	other := fw.CreateNamespace(t, "clone-kill-other")
	srcDir := bigSource(t, in.Namespace, in.Class.Name, files)
	bigSource(t, other, in.Class.Name, files)
	kept := fw.CreateClaim(t, in.Namespace, framework.ClaimOptions{Name: "kept", Class: in.Class.Name, DataSource: pvcSource("src")})
	gone := fw.CreateClaim(t, other, framework.ClaimOptions{Name: "gone", Class: in.Class.Name, DataSource: pvcSource("src")})
	fw.WaitEvent(t, kept, corev1.EventTypeNormal, "CloneStarted")
	fw.WaitEvent(t, gone, corev1.EventTypeNormal, "CloneStarted")
	first.Kill(t)
	for _, c := range []*corev1.PersistentVolumeClaim{kept, gone} {
		if left := staged(t, "pvc-"+string(c.UID)); len(left) != 1 || strings.HasSuffix(left[0], ".done") {
			t.Fatalf("staged copies of claim %s after the kill: %v; want one in progress (the kill did not land mid-copy)", c.Name, left)
		}
	}
	claims := fw.Cluster.Clientset.CoreV1().PersistentVolumeClaims(other)
	if err := claims.Delete(framework.Context(t), "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	in.Start(t, true)
	_, pv := fw.WaitClaimBound(t, in.Namespace, "kept")
	if n := countFiles(t, fw.DefaultExport().VolumeDir(t, pv)); n != files {
		t.Errorf("the copy holds %d files, want %d", n, files)
	}
	if n := countFiles(t, srcDir); n != files {
		t.Errorf("the source holds %d files, want its %d untouched", n, files)
	}
	framework.Poll(t, "no staging directory left", time.Minute, func(context.Context) (bool, error) {
		left := append(staged(t, "pvc-"+string(kept.UID)), staged(t, "pvc-"+string(gone.UID))...)
		return len(left) == 0, fmt.Errorf("left: %v", left)
	})
	assertReleased(t, in.Namespace, "src")
	assertReleased(t, other, "src")
	if n := in.CountPanics(t); n != 0 {
		t.Errorf("%d panics in the provisioner logs", n)
	}
}

// A clone onto another export, one with root_squash: the copy is made with the owners'
// credentials (root is squashed there), its top directory the new class's owner.
func TestCloneToAnotherExport(t *testing.T) {
	squash := fw.SquashExport()
	uid, gid := int(fw.Env.SquashExportUID), int(fw.Env.SquashExportGID)
	class := fw.CreateClass(t, framework.ClassOptions{})
	target := fw.CreateClass(t, framework.ClassOptions{Parameters: map[string]string{
		"share": squash.NFSPath, "uid": fmt.Sprint(uid), "gid": fmt.Sprint(gid), "mode": "0750"}})
	ns := fw.CreateNamespace(t, "clone-squash")
	fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "src", Class: class.Name})
	_, srcPV := fw.WaitClaimBound(t, ns, "src")
	srcDir := fw.DefaultExport().VolumeDir(t, srcPV)
	for _, f := range []struct {
		path     string
		uid, gid int
	}{{"a", 1234, 1234}, {"a/mine.txt", 1234, 1234}, {"shared.txt", uid, gid}} {
		p := filepath.Join(srcDir, f.path)
		var err error
		if filepath.Ext(p) == "" {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, []byte("owned by "+fmt.Sprint(f.uid)), 0o640)
		}
		if err == nil {
			err = os.Chown(p, f.uid, f.gid)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "copy", Class: target.Name, DataSource: pvcSource("src")})
	_, pv := fw.WaitClaimBound(t, ns, "copy")
	if pv.Spec.NFS.Path == srcPV.Spec.NFS.Path || !strings.HasPrefix(pv.Spec.NFS.Path, squash.NFSPath+"/") {
		t.Fatalf("the clone's PV is at %s, want a directory of the root_squash export %s", pv.Spec.NFS.Path, squash.NFSPath)
	}
	dir := squash.VolumeDir(t, pv)
	framework.AssertDir(t, dir, framework.DirAttrs{Mode: 0o750, UID: uint32(uid), GID: uint32(gid)})
	assertSameTree(t, srcDir, dir)
}
