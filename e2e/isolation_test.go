//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The tenant-isolation suite: two tenants as two namespaces on one export, the hostile one doing
// for real what a pod and a namespace owner can do — files and symlinks written on the export as
// its own uid, namespaces named to collide with archives, annotations naming other tenants'
// directories, claims racing the deletion of the directory they would lie in, owner annotations
// asking for root. For every case nothing of the victim is read, changed, moved or deleted, and
// every refusal is a Warning Event that says what to change. The cases that depend on how the
// backend touches the export run on both backends: the shared provisioner (wire) and a second
// one with --backend=mounted on the export's backing directory.

const tenantUID = 1000 // the uid the hostile tenant's pods write as

// isolationBackend makes classes of one provisioner under test.
type isolationBackend struct {
	name  string
	class func(t *testing.T, parameters map[string]string) string
}

func isolationBackends(t *testing.T) []isolationBackend {
	mounted := newFaultRun(t, "mounted", 0)
	mounted.start(t, true, "--backend=mounted", "--mount-root="+suite.env.exportDir)
	return []isolationBackend{
		{"wire", func(t *testing.T, p map[string]string) string {
			return createClass(t, classOptions{parameters: p}).Name
		}},
		{"mounted", func(t *testing.T, p map[string]string) string { return mounted.createClass(t, p).Name }},
	}
}

// createNamedNamespace makes a namespace with exactly this name (a tenant may choose any).
func createNamedNamespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{testLabelKey: testLabelValue}}}
	if _, err := suite.cluster.clientset.CoreV1().Namespaces().Create(testContext(t), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		err := suite.cluster.clientset.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", name, err)
		}
	})
	return name
}

// writeAsTenant writes a file in dir as the tenant's uid, as its pod would.
func writeAsTenant(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(path, tenantUID, tenantUID); err != nil {
		t.Fatal(err)
	}
}

// symlinkAsTenant plants a symlink as the tenant's uid.
func symlinkAsTenant(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(path, tenantUID, tenantUID); err != nil {
		t.Fatal(err)
	}
}

// victimTree snapshots a directory tree (names, modes, owners, contents) to prove it unchanged.
func victimTree(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st := statOf(info)
		b.WriteString(rel + " " + info.Mode().String() + " " + itoa(st.Uid) + ":" + itoa(st.Gid))
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.WriteString(" " + string(data))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatalf("reading %s: %v", root, err)
	}
	return b.String()
}

func TestIsolation(t *testing.T) {
	for _, backend := range isolationBackends(t) {
		t.Run(backend.name, func(t *testing.T) {
			t.Run("namespace named like an archive gets no archive", func(t *testing.T) {
				isolationArchiveNamespace(t, backend)
			})
			t.Run("symlink planted in a retained directory leads nowhere", func(t *testing.T) {
				isolationSymlinkComponent(t, backend)
			})
			t.Run("annotation naming another tenant's directory", func(t *testing.T) {
				isolationForeignDirectory(t, backend)
			})
		})
	}
	t.Run("wire only", func(t *testing.T) {
		t.Run("claim racing the deletion of the directory it would lie in", isolationNestedRace)
		t.Run("owner annotations bounded by the class", isolationOwnerPolicy)
		t.Run("data source refused, never an empty copy", isolationDataSource)
	})
}

// A victim's claim "data" is archived to archived-<victim>-data; the attacker names its namespace
// archived-<victim> and asks for "data": it must get a Warning, not the archive.
func isolationArchiveNamespace(t *testing.T, backend isolationBackend) {
	class := backend.class(t, map[string]string{"pathPattern": "${.PVC.namespace}-${.PVC.name}"})
	victim := createNamespace(t, "victim")
	createClaim(t, victim, claimOptions{name: "data", class: class})
	_, pv := waitClaimBound(t, victim, "data")
	dir := defaultExport().volumeDir(t, pv)
	writeAsTenant(t, filepath.Join(dir, "secret"), "victim's data")
	deleteClaim(t, victim, "data")
	waitVolumeGone(t, pv.Name)
	archive := filepath.Join(suite.env.exportDir, "archived-"+victim+"-data")
	before := victimTree(t, archive)

	attacker := createNamedNamespace(t, "archived-"+victim)
	claim := createClaim(t, attacker, claimOptions{name: "data", class: class})
	waitWarningEvent(t, claim, warningReason, "archive", "pathPattern")
	assertNoVolumeForClaim(t, claim)
	if after := victimTree(t, archive); after != before {
		t.Errorf("the archive changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	os.RemoveAll(archive)
}

// The tenant's retained directory holds a symlink (made by its pod) to the victim's directory; a
// claim whose path goes through that symlink must not create or chown anything in the victim's.
func isolationSymlinkComponent(t *testing.T, backend isolationBackend) {
	class := backend.class(t, map[string]string{"pathPattern": "${.PVC.namespace}/${.PVC.annotations.path}", "onDelete": "retain"})
	victimNS, attackerNS := createNamespace(t, "victim"), createNamespace(t, "attacker")
	createClaim(t, victimNS, claimOptions{name: "data", class: class, annotations: map[string]string{"path": "data"}})
	_, victimPV := waitClaimBound(t, victimNS, "data")
	victimDir := defaultExport().volumeDir(t, victimPV)
	writeAsTenant(t, filepath.Join(victimDir, "secret"), "victim's data")
	before := victimTree(t, victimDir)

	createClaim(t, attackerNS, claimOptions{name: "own", class: class, annotations: map[string]string{"path": "own"}})
	_, ownPV := waitClaimBound(t, attackerNS, "own")
	ownDir := defaultExport().volumeDir(t, ownPV)
	symlinkAsTenant(t, filepath.Join("..", "..", victimNS, "data"), filepath.Join(ownDir, "door"))
	deleteClaim(t, attackerNS, "own") // retained: the directory and the symlink stay, no PV points there
	waitVolumeGone(t, ownPV.Name)

	claim := createClaim(t, attackerNS, claimOptions{name: "steal", class: class,
		annotations: map[string]string{"path": "own/door/stolen", annotationUID: itoa(tenantUID), annotationMode: "0777"}})
	waitWarningEvent(t, claim, warningReason, "symbolic link")
	assertNoVolumeForClaim(t, claim)
	if after := victimTree(t, victimDir); after != before {
		t.Errorf("the victim's directory changed through the symlink:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	deleteClaim(t, victimNS, "data")
	os.RemoveAll(filepath.Join(suite.env.exportDir, victimNS))
	os.RemoveAll(filepath.Join(suite.env.exportDir, attackerNS))
}

// A class whose pattern lets annotations name any path: the attacker names the victim's retained
// directory and is refused (the path does not begin with its namespace).
func isolationForeignDirectory(t *testing.T, backend isolationBackend) {
	class := backend.class(t, map[string]string{"pathPattern": "${.PVC.annotations.path}", "onDelete": "retain"})
	victimNS, attackerNS := createNamespace(t, "victim"), createNamespace(t, "attacker")
	victimPath := victimNS + "-retained"
	createClaim(t, victimNS, claimOptions{name: "data", class: class, annotations: map[string]string{"path": victimPath}})
	_, pv := waitClaimBound(t, victimNS, "data")
	dir := defaultExport().volumeDir(t, pv)
	writeAsTenant(t, filepath.Join(dir, "secret"), "victim's data")
	deleteClaim(t, victimNS, "data")
	waitVolumeGone(t, pv.Name)
	before := victimTree(t, dir)

	claim := createClaim(t, attackerNS, claimOptions{name: "grab", class: class, annotations: map[string]string{"path": victimPath}})
	waitWarningEvent(t, claim, warningReason, "namespace", "reuseDirectory")
	assertNoVolumeForClaim(t, claim)
	if after := victimTree(t, dir); after != before {
		t.Errorf("the victim's retained directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	os.RemoveAll(dir)
}

// A claim whose path lies inside another claim's directory is created while that directory is
// being deleted: it is refused while the other volume exists, and whatever it gets in the end
// holds nothing of the deleted volume's data.
func isolationNestedRace(t *testing.T) {
	class := createClass(t, classOptions{parameters: map[string]string{"pathPattern": "${.PVC.namespace}/${.PVC.annotations.path}", "onDelete": "delete"}})
	ns := createNamespace(t, "nested")
	createClaim(t, ns, claimOptions{name: "parent", class: class.Name, annotations: map[string]string{"path": "parent"}})
	_, parentPV := waitClaimBound(t, ns, "parent")
	parentDir := defaultExport().volumeDir(t, parentPV)
	writeAsTenant(t, filepath.Join(parentDir, "secret"), "parent's data")
	if err := os.MkdirAll(filepath.Join(parentDir, "child"), 0o777); err != nil {
		t.Fatal(err)
	}
	writeAsTenant(t, filepath.Join(parentDir, "child", "inherited"), "parent's data")

	child := createClaim(t, ns, claimOptions{name: "child", class: class.Name, annotations: map[string]string{"path": "parent/child"}})
	waitWarningEvent(t, child, warningReason, parentPV.Name)
	deleteClaim(t, ns, "parent")
	waitVolumeGone(t, parentPV.Name)
	_, childPV := waitClaimBound(t, ns, "child")
	childDir := defaultExport().volumeDir(t, childPV)
	entries, err := os.ReadDir(childDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("the child's new volume holds %d entries of the deleted parent's", len(entries))
	}
	assertNotExists(t, filepath.Join(parentDir, "secret"))
	deleteClaim(t, ns, "child")
	waitVolumeGone(t, childPV.Name)
}

// claimUIDs bounds the uids a claim may ask for: uid 0 is refused naming the parameter, a uid in
// range is honoured.
func isolationOwnerPolicy(t *testing.T) {
	class := createClass(t, classOptions{parameters: map[string]string{"claimUIDs": "1000-1999", "claimMode": "none"}})
	ns := createNamespace(t, "owner-policy")
	root := createClaim(t, ns, claimOptions{name: "root", class: class.Name, annotations: map[string]string{annotationUID: "0"}})
	waitWarningEvent(t, root, warningReason, "claimUIDs", "1000-1999")
	assertNoVolumeForClaim(t, root)
	mode := createClaim(t, ns, claimOptions{name: "mode", class: class.Name, annotations: map[string]string{annotationMode: "4777"}})
	waitWarningEvent(t, mode, warningReason, "claimMode")
	createClaim(t, ns, claimOptions{name: "ok", class: class.Name, annotations: map[string]string{annotationUID: "1500"}})
	_, pv := waitClaimBound(t, ns, "ok")
	assertDir(t, defaultExport().volumeDir(t, pv), dirAttrs{mode: 0o777, uid: 1500, gid: 0})
}

// A clone or snapshot restore is refused with what to do, never bound to an empty directory.
func isolationDataSource(t *testing.T) {
	class := createClass(t, classOptions{})
	ns := createNamespace(t, "datasource")
	createClaim(t, ns, claimOptions{name: "src", class: class.Name})
	waitClaimBound(t, ns, "src")
	clone := createClaim(t, ns, claimOptions{name: "clone", class: class.Name,
		dataSource: &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "src"}})
	waitWarningEvent(t, clone, warningReason, "clon")
	assertNoVolumeForClaim(t, clone)
}

func statOf(info os.FileInfo) *syscall.Stat_t {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st
	}
	return &syscall.Stat_t{}
}
