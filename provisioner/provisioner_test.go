package provisioner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/mounted"
)

const (
	testServer = "nfs.example"
	testShare  = "/srv/nfs"
	testPV     = "pvc-0b6a3c1e-2f0d-4c55-9a53-6d3c8e1f7a10"
)

// exports is an Opener over real local directories, one per server:share,
// standing in for NFS exports.
type exports struct {
	dirs map[string]string // "server:share" -> local dir
	mu   sync.Mutex
	open map[string]*mounted.FS
}

func (e *exports) Open(_ context.Context, server, share string) (export.FS, error) {
	key := export.NewTarget(server, share).String()
	dir, ok := e.dirs[key]
	if !ok {
		return nil, errors.New("no such export")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if fsys := e.open[key]; fsys != nil {
		return fsys, nil
	}
	fsys, err := mounted.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	if e.open == nil {
		e.open = map[string]*mounted.FS{}
	}
	e.open[key] = fsys
	return fsys, nil
}

func (e *exports) close() {
	for _, fsys := range e.open {
		fsys.Close()
	}
}

type fixture struct {
	t        testing.TB
	dir      string // backing dir of the default export
	other    string // backing dir of nfs-2.example:/srv/b
	prov     *Provisioner
	pvs      cache.Indexer
	recorder *record.FakeRecorder
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{t: t, dir: t.TempDir(), other: t.TempDir(), recorder: record.NewFakeRecorder(100)}
	f.pvs = cache.NewIndexer(cache.MetaNamespaceKeyFunc, volumeIndexers())
	opener := &exports{dirs: map[string]string{
		testServer + ":" + testShare: f.dir,
		"nfs-2.example:/srv/b":       f.other,
	}}
	t.Cleanup(opener.close)
	f.prov = New(Config{
		DefaultServer: testServer,
		DefaultShare:  testShare,
		Opener:        opener,
		Volumes:       &informerIndex{indexer: f.pvs},
		Recorder:      f.recorder,
	})
	return f
}

func newClaim(annotations map[string]string) *v1.PersistentVolumeClaim {
	fs := v1.PersistentVolumeFilesystem
	return &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "data", UID: types.UID("0b6a3c1e"), Annotations: annotations},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteMany},
			VolumeMode:  &fs,
			Resources:   v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("100Mi")}},
		},
	}
}

func newClass(params map[string]string) *storagev1.StorageClass {
	retain := v1.PersistentVolumeReclaimRetain
	return &storagev1.StorageClass{
		ObjectMeta:    metav1.ObjectMeta{Name: "nfs-client"},
		Provisioner:   "k8s-sigs.io/nfs-subdir-external-provisioner",
		Parameters:    params,
		ReclaimPolicy: &retain,
		MountOptions:  []string{"nfsvers=4.1", "hard"},
	}
}

func (f *fixture) provision(claim *v1.PersistentVolumeClaim, class *storagev1.StorageClass) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	return f.prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: class, PVName: testPV, PVC: claim})
}

func (f *fixture) mustProvision(claim *v1.PersistentVolumeClaim, class *storagev1.StorageClass) *v1.PersistentVolume {
	f.t.Helper()
	pv, state, err := f.provision(claim, class)
	if err != nil || state != controller.ProvisioningFinished {
		f.t.Fatalf("Provision: %v (state %s)", err, state)
	}
	if err := f.pvs.Add(pv); err != nil {
		f.t.Fatal(err)
	}
	return pv
}

func (f *fixture) entries(dir string) []string {
	f.t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func statOwner(t *testing.T, p string) (mode os.FileMode, uid, gid uint32) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return os.FileMode(st.Mode & 0o7777), st.Uid, st.Gid
}

func TestProvisionPVFields(t *testing.T) {
	f := newFixture(t)
	pv := f.mustProvision(newClaim(nil), newClass(nil))
	dir := "default-data-" + testPV
	if pv.Name != testPV {
		t.Errorf("name %q", pv.Name)
	}
	if nfs := pv.Spec.NFS; nfs == nil || nfs.Server != testServer || nfs.Path != testShare+"/"+dir || nfs.ReadOnly {
		t.Errorf("nfs source %+v", pv.Spec.NFS)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimRetain {
		t.Errorf("reclaim policy %q, want the class's Retain", pv.Spec.PersistentVolumeReclaimPolicy)
	}
	if strings.Join(pv.Spec.MountOptions, ",") != "nfsvers=4.1,hard" {
		t.Errorf("mount options %v", pv.Spec.MountOptions)
	}
	if len(pv.Spec.AccessModes) != 1 || pv.Spec.AccessModes[0] != v1.ReadWriteMany {
		t.Errorf("access modes %v", pv.Spec.AccessModes)
	}
	if c := pv.Spec.Capacity[v1.ResourceStorage]; c.String() != "100Mi" {
		t.Errorf("capacity %s", c.String())
	}
	if pv.Annotations[AnnShare] != testShare || pv.Annotations[AnnDirectory] != dir || pv.Annotations[AnnOnDelete] != "archive" {
		t.Errorf("annotations %v", pv.Annotations)
	}
	mode, uid, gid := statOwner(t, filepath.Join(f.dir, dir))
	if mode != 0o777 || uid != 0 || gid != 0 {
		t.Errorf("directory mode %o uid %d gid %d, want 0777 0 0", mode, uid, gid)
	}
}

func TestProvisionOwnerPrecedence(t *testing.T) {
	f := newFixture(t)
	f.prov.cfg.Defaults = OwnerOverride{Mode: modePtr(0o700), UID: u32(7), GID: u32(7)}
	claim := newClaim(map[string]string{AnnDirectoryUID: "1001"})
	f.mustProvision(claim, newClass(map[string]string{"uid": "2000", "gid": "3000"}))
	mode, uid, gid := statOwner(t, filepath.Join(f.dir, "default-data-"+testPV))
	if mode != 0o700 || uid != 1001 || gid != 3000 {
		t.Errorf("got mode %o uid %d gid %d; want 0700 (env) 1001 (claim) 3000 (class)", mode, uid, gid)
	}
}

func TestProvisionIdempotent(t *testing.T) {
	f := newFixture(t)
	class := newClass(nil)
	first := f.mustProvision(newClaim(nil), class)
	if err := os.WriteFile(filepath.Join(f.dir, first.Annotations[AnnDirectory], "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	second, _, err := f.provision(newClaim(nil), class)
	if err != nil {
		t.Fatalf("second Provision: %v", err)
	}
	if second.Spec.NFS.Path != first.Spec.NFS.Path {
		t.Errorf("paths differ: %s vs %s", first.Spec.NFS.Path, second.Spec.NFS.Path)
	}
	if got := f.entries(f.dir); len(got) != 1 {
		t.Errorf("export holds %v, want one directory", got)
	}
	if _, err := os.Stat(filepath.Join(f.dir, first.Annotations[AnnDirectory], "data")); err != nil {
		t.Errorf("retry lost data: %v", err)
	}
}

func TestProvisionOtherExport(t *testing.T) {
	f := newFixture(t)
	pv := f.mustProvision(newClaim(nil), newClass(map[string]string{"server": "nfs-2.example", "share": "/srv/b"}))
	if pv.Spec.NFS.Server != "nfs-2.example" || !strings.HasPrefix(pv.Spec.NFS.Path, "/srv/b/") {
		t.Errorf("nfs source %+v", pv.Spec.NFS)
	}
	if len(f.entries(f.other)) != 1 || len(f.entries(f.dir)) != 0 {
		t.Errorf("directory made on the wrong export: default %v, other %v", f.entries(f.dir), f.entries(f.other))
	}
}

func TestProvisionRefusals(t *testing.T) {
	tests := []struct {
		name    string
		claim   *v1.PersistentVolumeClaim
		params  map[string]string
		wantErr string
	}{
		{"unknown parameter", newClaim(nil), map[string]string{"archiveOnDelte": "false"}, `"archiveOnDelte": unknown parameter`},
		{"bad mode", newClaim(nil), map[string]string{"mode": "999"}, `"mode"`},
		{"bad annotation", newClaim(map[string]string{AnnDirectoryGID: "staff"}), nil, AnnDirectoryGID},
		{"traversal", newClaim(map[string]string{"p": "../../etc"}), map[string]string{"pathPattern": "${.PVC.annotations.p}"}, `".."`},
		{"unknown export", newClaim(nil), map[string]string{"server": "nowhere.example"}, "open export nowhere.example:/srv/nfs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			pv, state, err := f.provision(tt.claim, newClass(tt.params))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if pv != nil {
				t.Errorf("a PV was returned with the error")
			}
			if state == controller.ProvisioningInBackground {
				t.Errorf("state %s: nothing can be in progress", state)
			}
			if got := f.entries(f.dir); len(got) != 0 {
				t.Errorf("export not empty after a refusal: %v", got)
			}
		})
	}
	t.Run("selector", func(t *testing.T) {
		f := newFixture(t)
		claim := newClaim(nil)
		claim.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}
		if _, _, err := f.provision(claim, newClass(nil)); err == nil || !strings.Contains(err.Error(), "selector") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("file in the way", func(t *testing.T) {
		f := newFixture(t)
		if err := os.WriteFile(filepath.Join(f.dir, "default-data-"+testPV), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_, state, err := f.provision(newClaim(nil), newClass(nil))
		if !errors.Is(err, export.ErrNotDir) || state != controller.ProvisioningFinished {
			t.Fatalf("err = %v, state %s", err, state)
		}
	})
}

// deleteAndCheck provisions with params, writes a file, deletes, and
// returns the export's entries afterwards.
func deleteWith(t *testing.T, params map[string]string) (*fixture, *v1.PersistentVolume) {
	f := newFixture(t)
	pv := f.mustProvision(newClaim(nil), newClass(params))
	if err := os.WriteFile(filepath.Join(f.dir, pv.Annotations[AnnDirectory], "user-data"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.pvs.Delete(pv); err != nil {
		t.Fatal(err)
	}
	if err := f.prov.Delete(context.Background(), pv); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	return f, pv
}

func TestDeletePolicies(t *testing.T) {
	dir := "default-data-" + testPV
	t.Run("archive by default", func(t *testing.T) {
		f, _ := deleteWith(t, nil)
		if got := strings.Join(f.entries(f.dir), ","); got != "archived-"+dir {
			t.Fatalf("export holds %s", got)
		}
		if b, err := os.ReadFile(filepath.Join(f.dir, "archived-"+dir, "user-data")); err != nil || string(b) != "precious" {
			t.Errorf("archive lost data: %q, %v", b, err)
		}
	})
	t.Run("archiveOnDelete false removes", func(t *testing.T) {
		f, _ := deleteWith(t, map[string]string{"archiveOnDelete": "false"})
		if got := f.entries(f.dir); len(got) != 0 {
			t.Fatalf("export holds %v", got)
		}
	})
	t.Run("onDelete delete removes", func(t *testing.T) {
		f, _ := deleteWith(t, map[string]string{"onDelete": "delete"})
		if got := f.entries(f.dir); len(got) != 0 {
			t.Fatalf("export holds %v", got)
		}
	})
	t.Run("onDelete retain keeps", func(t *testing.T) {
		f, _ := deleteWith(t, map[string]string{"onDelete": "retain"})
		if got := strings.Join(f.entries(f.dir), ","); got != dir {
			t.Fatalf("export holds %s", got)
		}
	})
}

func TestDeleteIdempotent(t *testing.T) {
	f, pv := deleteWith(t, nil)
	if err := f.prov.Delete(context.Background(), pv); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if got := len(f.entries(f.dir)); got != 1 {
		t.Errorf("export holds %d entries after a repeated archive", got)
	}
	g, pv := deleteWith(t, map[string]string{"onDelete": "delete"})
	if err := g.prov.Delete(context.Background(), pv); err != nil {
		t.Fatalf("second Delete of a removed dir: %v", err)
	}
}

func TestArchiveCollision(t *testing.T) {
	f := newFixture(t)
	pv := f.mustProvision(newClaim(nil), newClass(nil))
	dir := pv.Annotations[AnnDirectory]
	// Two older archives with the same name, one holding data, one empty.
	for _, name := range []string{"archived-" + dir, "archived-" + dir + "-2"} {
		if err := os.MkdirAll(filepath.Join(f.dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(f.dir, "archived-"+dir, "old"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.pvs.Delete(pv)
	if err := f.prov.Delete(context.Background(), pv); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "archived-"+dir, "old")); err != nil {
		t.Errorf("older archive overwritten: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(f.dir, "archived-"+dir+"-3")); err != nil || !fi.IsDir() {
		t.Errorf("new archive not at -3: %v", err)
	}
}

func TestArchiveNestedPath(t *testing.T) {
	f := newFixture(t)
	claim := newClaim(map[string]string{"dir": "team/a"})
	pv := f.mustProvision(claim, newClass(map[string]string{"pathPattern": "${.PVC.annotations.dir}/${.PVC.name}"}))
	f.pvs.Delete(pv)
	if err := f.prov.Delete(context.Background(), pv); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "team", "a", "archived-data")); err != nil {
		t.Errorf("nested archive not in the same parent: %v", err)
	}
}

func TestDeleteSafety(t *testing.T) {
	mk := func(name, path string, ann map[string]string) *v1.PersistentVolume {
		return &v1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann},
			Spec:       v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: testServer, Path: path}}},
		}
	}
	ann := func(dir, policy string) map[string]string {
		return map[string]string{AnnShare: testShare, AnnDirectory: dir, AnnOnDelete: policy}
	}
	tests := []struct {
		name    string
		pv      *v1.PersistentVolume
		wantErr string
	}{
		{"export root", mk("a", testShare, ann("", "delete")), "export root"},
		{"export root dot", mk("a", testShare, ann(".", "delete")), "export root"},
		{"outside via dotdot", mk("a", "/srv", ann("..", "delete")), `".."`},
		{"path edited", mk("a", "/etc", ann("keep", "delete")), "does not match"},
		{"legacy outside share", mk("a", "/etc/keep", nil), "not below the default export path"},
		{"legacy share itself", mk("a", testShare, nil), "not below"},
		{"legacy other server", &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "a"},
			Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: "x", Path: testShare + "/keep"}}}}, "not on the default export"},
		{"not nfs", &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, "not an NFS volume"},
		{"bad policy", mk("a", testShare+"/keep", ann("keep", "shred")), "shred"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if err := os.MkdirAll(filepath.Join(f.dir, "keep"), 0o755); err != nil {
				t.Fatal(err)
			}
			err := f.prov.Delete(context.Background(), tt.pv)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "data is kept") {
				t.Fatalf("err = %v, want one containing %q and saying the data is kept", err, tt.wantErr)
			}
			if got := strings.Join(f.entries(f.dir), ","); got != "keep" {
				t.Errorf("export changed: %s", got)
			}
		})
	}
}

func TestDeleteKeepsSharedDirectory(t *testing.T) {
	for _, policy := range []string{"delete", "archive"} {
		t.Run(policy, func(t *testing.T) {
			f := newFixture(t)
			pv := f.mustProvision(newClaim(nil), newClass(map[string]string{"onDelete": policy}))
			// A second PV (say, a static one an admin made) points inside it.
			other := pv.DeepCopy()
			other.Name = "static-pv"
			other.Spec.NFS.Path += "/sub"
			if err := f.pvs.Add(other); err != nil {
				t.Fatal(err)
			}
			if err := f.prov.Delete(context.Background(), pv); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if got := strings.Join(f.entries(f.dir), ","); got != pv.Annotations[AnnDirectory] {
				t.Errorf("shared directory touched: export holds %s", got)
			}
			select {
			case ev := <-f.recorder.Events:
				if !strings.Contains(ev, ReasonDirectoryKept) || !strings.Contains(ev, "static-pv") {
					t.Errorf("event %q", ev)
				}
			default:
				t.Error("no Event says the directory was kept")
			}
		})
	}
}

func TestDeleteLegacyPV(t *testing.T) {
	// A PV made by nfs-subdir-external-provisioner: no annotations.
	f := newFixture(t)
	if err := os.MkdirAll(filepath.Join(f.dir, "default-old-pvc-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-1"},
		Spec:       v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: testServer, Path: testShare + "/default-old-pvc-1"}}},
	}
	if err := f.prov.Delete(context.Background(), pv); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.entries(f.dir), ","); got != "archived-default-old-pvc-1" {
		t.Errorf("export holds %s", got)
	}
}

func TestVolumeIndex(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, volumeIndexers())
	add := func(name, server, path string) {
		idx.Add(&v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: server, Path: path}}}})
	}
	add("a", "NFS.example", "/srv/nfs/a")
	add("a-sub", "nfs.example", "/srv/nfs/a/sub/")
	add("ab", "nfs.example", "/srv/nfs/ab")
	add("other-server", "nfs-2.example", "/srv/nfs/a")
	vi := &informerIndex{indexer: idx}
	got, err := vi.VolumesUsing("nfs.example", "/srv/nfs/a")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, pv := range got {
		names = append(names, pv.Name)
	}
	if len(names) != 2 || !strings.Contains(strings.Join(names, ","), "a-sub") {
		t.Errorf("VolumesUsing = %v, want a and a-sub only", names)
	}
}
