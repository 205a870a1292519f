package provisioner_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/internal/provtest"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

func TestProvisionPVFields(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	pv := f.MustProvision(provtest.Claim(nil), provtest.Class(nil))
	dir := "default-data-" + provtest.PV
	if pv.Name != provtest.PV {
		t.Errorf("name %q", pv.Name)
	}
	if nfs := pv.Spec.NFS; nfs == nil || nfs.Server != provtest.Server || nfs.Path != provtest.Share+"/"+dir || nfs.ReadOnly {
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
	if pv.Annotations[volume.AnnShare] != provtest.Share || pv.Annotations[volume.AnnDirectory] != dir || pv.Annotations[volume.AnnOnDelete] != "archive" {
		t.Errorf("annotations %v", pv.Annotations)
	}
	mode, uid, gid := provtest.StatOwner(t, filepath.Join(f.Dir, dir))
	if mode != 0o777 || uid != 0 || gid != 0 {
		t.Errorf("directory mode %o uid %d gid %d, want 0777 0 0", mode, uid, gid)
	}
}

func TestProvisionOwnerPrecedence(t *testing.T) {
	defaultMode, defaultID := export.Mode(0o700), uint32(7)
	f := provtest.New(t, provtest.Options{Defaults: class.OwnerOverride{Mode: &defaultMode, UID: &defaultID, GID: &defaultID}})
	claim := provtest.Claim(map[string]string{class.AnnDirectoryUID: "1001"})
	f.MustProvision(claim, provtest.Class(map[string]string{"uid": "2000", "gid": "3000"}))
	mode, uid, gid := provtest.StatOwner(t, filepath.Join(f.Dir, "default-data-"+provtest.PV))
	if mode != 0o700 || uid != 1001 || gid != 3000 {
		t.Errorf("got mode %o uid %d gid %d; want 0700 (env) 1001 (claim) 3000 (class)", mode, uid, gid)
	}
}

func TestProvisionIdempotent(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	class := provtest.Class(nil)
	first := f.MustProvision(provtest.Claim(nil), class)
	if err := os.WriteFile(filepath.Join(f.Dir, first.Annotations[volume.AnnDirectory], "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	second, _, err := f.Provision(provtest.Claim(nil), class)
	if err != nil {
		t.Fatalf("second Provision: %v", err)
	}
	if second.Spec.NFS.Path != first.Spec.NFS.Path {
		t.Errorf("paths differ: %s vs %s", first.Spec.NFS.Path, second.Spec.NFS.Path)
	}
	if got := f.Entries(f.Dir); len(got) != 1 {
		t.Errorf("export holds %v, want one directory", got)
	}
	if _, err := os.Stat(filepath.Join(f.Dir, first.Annotations[volume.AnnDirectory], "data")); err != nil {
		t.Errorf("retry lost data: %v", err)
	}
}

func TestProvisionOtherExport(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	pv := f.MustProvision(provtest.Claim(nil), provtest.Class(map[string]string{"server": "nfs-2.example", "share": "/srv/b"}))
	if pv.Spec.NFS.Server != "nfs-2.example" || !strings.HasPrefix(pv.Spec.NFS.Path, "/srv/b/") {
		t.Errorf("nfs source %+v", pv.Spec.NFS)
	}
	if len(f.Entries(f.Other)) != 1 || len(f.Entries(f.Dir)) != 0 {
		t.Errorf("directory made on the wrong export: default %v, other %v", f.Entries(f.Dir), f.Entries(f.Other))
	}
}

func TestProvisionRefusals(t *testing.T) {
	tests := []struct {
		name    string
		claim   *v1.PersistentVolumeClaim
		params  map[string]string
		wantErr string
	}{
		{"unknown parameter", provtest.Claim(nil), map[string]string{"archiveOnDelte": "false"}, `"archiveOnDelte": unknown parameter`},
		{"bad mode", provtest.Claim(nil), map[string]string{"mode": "999"}, `"mode"`},
		{"bad annotation", provtest.Claim(map[string]string{class.AnnDirectoryGID: "staff"}), nil, class.AnnDirectoryGID},
		{"traversal", provtest.Claim(map[string]string{"p": "../../etc"}), map[string]string{"pathPattern": "${.PVC.annotations.p}"}, `".."`},
		{"unknown export", provtest.Claim(nil), map[string]string{"server": "nowhere.example"}, "open export nowhere.example:/srv/nfs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := provtest.New(t, provtest.Options{})
			pv, state, err := f.Provision(tt.claim, provtest.Class(tt.params))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if pv != nil {
				t.Errorf("a PV was returned with the error")
			}
			if state == controller.ProvisioningInBackground {
				t.Errorf("state %s: nothing can be in progress", state)
			}
			if got := f.Entries(f.Dir); len(got) != 0 {
				t.Errorf("export not empty after a refusal: %v", got)
			}
		})
	}
	t.Run("selector", func(t *testing.T) {
		f := provtest.New(t, provtest.Options{})
		claim := provtest.Claim(nil)
		claim.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}
		if _, _, err := f.Provision(claim, provtest.Class(nil)); err == nil || !strings.Contains(err.Error(), "selector") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("file in the way", func(t *testing.T) {
		f := provtest.New(t, provtest.Options{})
		if err := os.WriteFile(filepath.Join(f.Dir, "default-data-"+provtest.PV), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_, state, err := f.Provision(provtest.Claim(nil), provtest.Class(nil))
		if !errors.Is(err, export.ErrNotDir) || state != controller.ProvisioningFinished {
			t.Fatalf("err = %v, state %s", err, state)
		}
	})
}

// deleteAndCheck provisions with params, writes a file, deletes, and
// returns the export's entries afterwards.
func deleteWith(t *testing.T, params map[string]string) (*provtest.Fixture, *v1.PersistentVolume) {
	f := provtest.New(t, provtest.Options{})
	pv := f.MustProvision(provtest.Claim(nil), provtest.Class(params))
	if err := os.WriteFile(filepath.Join(f.Dir, pv.Annotations[volume.AnnDirectory], "user-data"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.PVs.Delete(pv); err != nil {
		t.Fatal(err)
	}
	if err := f.Prov.Delete(context.Background(), pv); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	return f, pv
}

func TestDeletePolicies(t *testing.T) {
	dir := "default-data-" + provtest.PV
	t.Run("archive by default", func(t *testing.T) {
		f, _ := deleteWith(t, nil)
		if got := strings.Join(f.Entries(f.Dir), ","); got != "archived-"+dir {
			t.Fatalf("export holds %s", got)
		}
		if b, err := os.ReadFile(filepath.Join(f.Dir, "archived-"+dir, "user-data")); err != nil || string(b) != "precious" {
			t.Errorf("archive lost data: %q, %v", b, err)
		}
	})
	t.Run("archiveOnDelete false removes", func(t *testing.T) {
		f, _ := deleteWith(t, map[string]string{"archiveOnDelete": "false"})
		if got := f.Entries(f.Dir); len(got) != 0 {
			t.Fatalf("export holds %v", got)
		}
	})
	t.Run("onDelete delete removes", func(t *testing.T) {
		f, _ := deleteWith(t, map[string]string{"onDelete": "delete"})
		if got := f.Entries(f.Dir); len(got) != 0 {
			t.Fatalf("export holds %v", got)
		}
	})
	t.Run("onDelete retain keeps", func(t *testing.T) {
		f, _ := deleteWith(t, map[string]string{"onDelete": "retain"})
		if got := strings.Join(f.Entries(f.Dir), ","); got != dir {
			t.Fatalf("export holds %s", got)
		}
	})
}

func TestDeleteIdempotent(t *testing.T) {
	f, pv := deleteWith(t, nil)
	if err := f.Prov.Delete(context.Background(), pv); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if got := len(f.Entries(f.Dir)); got != 1 {
		t.Errorf("export holds %d entries after a repeated archive", got)
	}
	g, pv := deleteWith(t, map[string]string{"onDelete": "delete"})
	if err := g.Prov.Delete(context.Background(), pv); err != nil {
		t.Fatalf("second Delete of a removed dir: %v", err)
	}
}

func TestArchiveCollision(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	pv := f.MustProvision(provtest.Claim(nil), provtest.Class(nil))
	dir := pv.Annotations[volume.AnnDirectory]
	// Two older archives with the same name, one holding data, one empty.
	for _, name := range []string{"archived-" + dir, "archived-" + dir + "-2"} {
		if err := os.MkdirAll(filepath.Join(f.Dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(f.Dir, "archived-"+dir, "old"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.PVs.Delete(pv)
	if err := f.Prov.Delete(context.Background(), pv); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.Dir, "archived-"+dir, "old")); err != nil {
		t.Errorf("older archive overwritten: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(f.Dir, "archived-"+dir+"-3")); err != nil || !fi.IsDir() {
		t.Errorf("new archive not at -3: %v", err)
	}
}

func TestArchiveNestedPath(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	claim := provtest.Claim(map[string]string{"dir": "team/a"})
	pv := f.MustProvision(claim, provtest.Class(map[string]string{"pathPattern": "${.PVC.annotations.dir}/${.PVC.name}"}))
	f.PVs.Delete(pv)
	if err := f.Prov.Delete(context.Background(), pv); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.Dir, "team", "a", "archived-data")); err != nil {
		t.Errorf("nested archive not in the same parent: %v", err)
	}
}

func TestDeleteSafety(t *testing.T) {
	mk := func(name, path string, ann map[string]string) *v1.PersistentVolume {
		return &v1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann},
			Spec:       v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: provtest.Server, Path: path}}},
		}
	}
	ann := func(dir, policy string) map[string]string {
		return map[string]string{volume.AnnShare: provtest.Share, volume.AnnDirectory: dir, volume.AnnOnDelete: policy}
	}
	tests := []struct {
		name    string
		pv      *v1.PersistentVolume
		wantErr string
	}{
		{"export root", mk("a", provtest.Share, ann("", "delete")), "export root"},
		{"export root dot", mk("a", provtest.Share, ann(".", "delete")), "export root"},
		{"outside via dotdot", mk("a", "/srv", ann("..", "delete")), `".."`},
		{"path edited", mk("a", "/etc", ann("keep", "delete")), "does not match"},
		{"legacy outside share", mk("a", "/etc/keep", nil), "not below the default export path"},
		{"legacy share itself", mk("a", provtest.Share, nil), "not below"},
		{"legacy other server", &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "a"},
			Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: "x", Path: provtest.Share + "/keep"}}}}, "not on the default export"},
		{"not nfs", &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, "not an NFS volume"},
		{"bad policy", mk("a", provtest.Share+"/keep", ann("keep", "shred")), "shred"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := provtest.New(t, provtest.Options{})
			if err := os.MkdirAll(filepath.Join(f.Dir, "keep"), 0o755); err != nil {
				t.Fatal(err)
			}
			err := f.Prov.Delete(context.Background(), tt.pv)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "data is kept") {
				t.Fatalf("err = %v, want one containing %q and saying the data is kept", err, tt.wantErr)
			}
			if got := strings.Join(f.Entries(f.Dir), ","); got != "keep" {
				t.Errorf("export changed: %s", got)
			}
		})
	}
}

func TestDeleteKeepsSharedDirectory(t *testing.T) {
	for _, policy := range []string{"delete", "archive"} {
		t.Run(policy, func(t *testing.T) {
			f := provtest.New(t, provtest.Options{})
			pv := f.MustProvision(provtest.Claim(nil), provtest.Class(map[string]string{"onDelete": policy}))
			// A second PV (say, a static one an admin made) points inside it.
			other := pv.DeepCopy()
			other.Name = "static-pv"
			other.Spec.NFS.Path += "/sub"
			if err := f.PVs.Add(other); err != nil {
				t.Fatal(err)
			}
			if err := f.Prov.Delete(context.Background(), pv); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if got := strings.Join(f.Entries(f.Dir), ","); got != pv.Annotations[volume.AnnDirectory] {
				t.Errorf("shared directory touched: export holds %s", got)
			}
			select {
			case ev := <-f.Recorder.Events:
				if !strings.Contains(ev, provisioner.ReasonDirectoryKept) || !strings.Contains(ev, "static-pv") {
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
	f := provtest.New(t, provtest.Options{})
	if err := os.MkdirAll(filepath.Join(f.Dir, "default-old-pvc-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-1"},
		Spec:       v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: provtest.Server, Path: provtest.Share + "/default-old-pvc-1"}}},
	}
	if err := f.Prov.Delete(context.Background(), pv); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Entries(f.Dir), ","); got != "archived-default-old-pvc-1" {
		t.Errorf("export holds %s", got)
	}
}

// A provision for a dead server must fail at once, not hold a worker for its timeouts, once the
// first one has found the server dead.
func TestProvisionFailsFastForDeadServer(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	dead := &deadOpener{err: fmt.Errorf("dial: %w", context.DeadlineExceeded)}
	f.Opener.Set(dead)
	for i := 0; i < 5; i++ {
		if _, _, err := f.Provision(provtest.Claim(nil), provtest.Class(nil)); err == nil {
			t.Fatal("provision on a dead server succeeded")
		}
	}
	if dead.opens != 1 {
		t.Errorf("%d attempts reached the dead server, want 1 (the rest turned away by the gate)", dead.opens)
	}
}

type deadOpener struct {
	err   error
	opens int
}

func (o *deadOpener) Open(context.Context, string, string) (export.FS, error) {
	o.opens++
	return nil, o.err
}

// A claim that may only read (ReadOnlyMany and nothing else) gets a read-only NFS volume; any
// claim that may write gets a writable one.
func TestProvisionReadOnlyMany(t *testing.T) {
	for _, tc := range []struct {
		modes    []v1.PersistentVolumeAccessMode
		readOnly bool
	}{
		{[]v1.PersistentVolumeAccessMode{v1.ReadOnlyMany}, true},
		{[]v1.PersistentVolumeAccessMode{v1.ReadWriteMany}, false},
		{[]v1.PersistentVolumeAccessMode{v1.ReadOnlyMany, v1.ReadWriteOnce}, false},
		{nil, false},
	} {
		f := provtest.New(t, provtest.Options{})
		claim := provtest.Claim(nil)
		claim.Spec.AccessModes = tc.modes
		pv := f.MustProvision(claim, provtest.Class(nil))
		if pv.Spec.NFS.ReadOnly != tc.readOnly {
			t.Errorf("access modes %v: nfs.readOnly %v, want %v", tc.modes, pv.Spec.NFS.ReadOnly, tc.readOnly)
		}
		// The kubelet mounts read-only only on the mount option (nfs.readOnly is not read for PVs).
		if slices.Contains(pv.Spec.MountOptions, "ro") != tc.readOnly {
			t.Errorf("access modes %v: mount options %v, want ro: %v", tc.modes, pv.Spec.MountOptions, tc.readOnly)
		}
	}
}
