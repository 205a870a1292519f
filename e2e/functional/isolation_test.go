//go:build e2e

package functional

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
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
	mounted := fw.NewInstance(t, "mounted")
	mounted.Start(t, true, "--backend=mounted", "--mount-root="+fw.Env.ExportDir)
	return []isolationBackend{
		{"wire", func(t *testing.T, p map[string]string) string {
			return fw.CreateClass(t, framework.ClassOptions{Parameters: p}).Name
		}},
		{"mounted", func(t *testing.T, p map[string]string) string { return mounted.CreateClass(t, p).Name }},
	}
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
	})
}

// A victim's claim "data" is archived to archived-<victim>-data; the attacker names its namespace
// archived-<victim> and asks for "data": it must get a Warning, not the archive.
func isolationArchiveNamespace(t *testing.T, backend isolationBackend) {
	class := backend.class(t, map[string]string{"pathPattern": "${.PVC.namespace}-${.PVC.name}"})
	victim := fw.CreateNamespace(t, "victim")
	fw.CreateClaim(t, victim, framework.ClaimOptions{Name: "data", Class: class})
	_, pv := fw.WaitClaimBound(t, victim, "data")
	dir := fw.DefaultExport().VolumeDir(t, pv)
	writeAsTenant(t, filepath.Join(dir, "secret"), "victim's data")
	fw.DeleteClaim(t, victim, "data")
	fw.WaitVolumeGone(t, pv.Name)
	archive := filepath.Join(fw.Env.ExportDir, "archived-"+victim+"-data")
	before := victimTree(t, archive)

	attacker := fw.CreateNamedNamespace(t, "archived-"+victim)
	claim := fw.CreateClaim(t, attacker, framework.ClaimOptions{Name: "data", Class: class})
	fw.WaitWarningEvent(t, claim, framework.FailureReason, "archive", "pathPattern")
	fw.AssertNoVolumeForClaim(t, claim)
	if after := victimTree(t, archive); after != before {
		t.Errorf("the archive changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	os.RemoveAll(archive)
}

// The tenant's retained directory holds a symlink (made by its pod) to the victim's directory; a
// claim whose path goes through that symlink must not create or chown anything in the victim's.
func isolationSymlinkComponent(t *testing.T, backend isolationBackend) {
	class := backend.class(t, map[string]string{"pathPattern": "${.PVC.namespace}/${.PVC.annotations.path}", "onDelete": "retain"})
	victimNS, attackerNS := fw.CreateNamespace(t, "victim"), fw.CreateNamespace(t, "attacker")
	fw.CreateClaim(t, victimNS, framework.ClaimOptions{Name: "data", Class: class, Annotations: map[string]string{"path": "data"}})
	_, victimPV := fw.WaitClaimBound(t, victimNS, "data")
	victimDir := fw.DefaultExport().VolumeDir(t, victimPV)
	writeAsTenant(t, filepath.Join(victimDir, "secret"), "victim's data")
	before := victimTree(t, victimDir)

	fw.CreateClaim(t, attackerNS, framework.ClaimOptions{Name: "own", Class: class, Annotations: map[string]string{"path": "own"}})
	_, ownPV := fw.WaitClaimBound(t, attackerNS, "own")
	ownDir := fw.DefaultExport().VolumeDir(t, ownPV)
	symlinkAsTenant(t, filepath.Join("..", "..", victimNS, "data"), filepath.Join(ownDir, "door"))
	fw.DeleteClaim(t, attackerNS, "own") // retained: the directory and the symlink stay, no PV points there
	fw.WaitVolumeGone(t, ownPV.Name)

	claim := fw.CreateClaim(t, attackerNS, framework.ClaimOptions{Name: "steal", Class: class,
		Annotations: map[string]string{"path": "own/door/stolen", annotationUID: itoa(tenantUID), annotationMode: "0777"}})
	fw.WaitWarningEvent(t, claim, framework.FailureReason, "symbolic link")
	fw.AssertNoVolumeForClaim(t, claim)
	if after := victimTree(t, victimDir); after != before {
		t.Errorf("the victim's directory changed through the symlink:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	fw.DeleteClaim(t, victimNS, "data")
	os.RemoveAll(filepath.Join(fw.Env.ExportDir, victimNS))
	os.RemoveAll(filepath.Join(fw.Env.ExportDir, attackerNS))
}

// A class whose pattern lets annotations name any path: the attacker names the victim's retained
// directory and is refused (the path does not begin with its namespace).
func isolationForeignDirectory(t *testing.T, backend isolationBackend) {
	class := backend.class(t, map[string]string{"pathPattern": "${.PVC.annotations.path}", "onDelete": "retain"})
	victimNS, attackerNS := fw.CreateNamespace(t, "victim"), fw.CreateNamespace(t, "attacker")
	victimPath := victimNS + "-retained"
	fw.CreateClaim(t, victimNS, framework.ClaimOptions{Name: "data", Class: class, Annotations: map[string]string{"path": victimPath}})
	_, pv := fw.WaitClaimBound(t, victimNS, "data")
	dir := fw.DefaultExport().VolumeDir(t, pv)
	writeAsTenant(t, filepath.Join(dir, "secret"), "victim's data")
	fw.DeleteClaim(t, victimNS, "data")
	fw.WaitVolumeGone(t, pv.Name)
	before := victimTree(t, dir)

	claim := fw.CreateClaim(t, attackerNS, framework.ClaimOptions{Name: "grab", Class: class, Annotations: map[string]string{"path": victimPath}})
	fw.WaitWarningEvent(t, claim, framework.FailureReason, "namespace", "reuseDirectory")
	fw.AssertNoVolumeForClaim(t, claim)
	if after := victimTree(t, dir); after != before {
		t.Errorf("the victim's retained directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	os.RemoveAll(dir)
}

// A claim whose path lies inside another claim's directory is created while that directory is
// being deleted: it is refused while the other volume exists, and whatever it gets in the end
// holds nothing of the deleted volume's data.
func isolationNestedRace(t *testing.T) {
	class := fw.CreateClass(t, framework.ClassOptions{Parameters: map[string]string{"pathPattern": "${.PVC.namespace}/${.PVC.annotations.path}", "onDelete": "delete"}})
	ns := fw.CreateNamespace(t, "nested")
	fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "parent", Class: class.Name, Annotations: map[string]string{"path": "parent"}})
	_, parentPV := fw.WaitClaimBound(t, ns, "parent")
	parentDir := fw.DefaultExport().VolumeDir(t, parentPV)
	writeAsTenant(t, filepath.Join(parentDir, "secret"), "parent's data")
	if err := os.MkdirAll(filepath.Join(parentDir, "child"), 0o777); err != nil {
		t.Fatal(err)
	}
	writeAsTenant(t, filepath.Join(parentDir, "child", "inherited"), "parent's data")

	child := fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "child", Class: class.Name, Annotations: map[string]string{"path": "parent/child"}})
	fw.WaitWarningEvent(t, child, framework.FailureReason, parentPV.Name)
	fw.DeleteClaim(t, ns, "parent")
	fw.WaitVolumeGone(t, parentPV.Name)
	_, childPV := fw.WaitClaimBound(t, ns, "child")
	childDir := fw.DefaultExport().VolumeDir(t, childPV)
	entries, err := os.ReadDir(childDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("the child's new volume holds %d entries of the deleted parent's", len(entries))
	}
	framework.AssertNotExists(t, filepath.Join(parentDir, "secret"))
	fw.DeleteClaim(t, ns, "child")
	fw.WaitVolumeGone(t, childPV.Name)
}

// claimUIDs bounds the uids a claim may ask for: uid 0 is refused naming the parameter, a uid in
// range is honoured.
func isolationOwnerPolicy(t *testing.T) {
	class := fw.CreateClass(t, framework.ClassOptions{Parameters: map[string]string{"claimUIDs": "1000-1999", "claimMode": "none"}})
	ns := fw.CreateNamespace(t, "owner-policy")
	root := fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "root", Class: class.Name, Annotations: map[string]string{annotationUID: "0"}})
	fw.WaitWarningEvent(t, root, framework.FailureReason, "claimUIDs", "1000-1999")
	fw.AssertNoVolumeForClaim(t, root)
	mode := fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "mode", Class: class.Name, Annotations: map[string]string{annotationMode: "4777"}})
	fw.WaitWarningEvent(t, mode, framework.FailureReason, "claimMode")
	fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "ok", Class: class.Name, Annotations: map[string]string{annotationUID: "1500"}})
	_, pv := fw.WaitClaimBound(t, ns, "ok")
	framework.AssertDir(t, fw.DefaultExport().VolumeDir(t, pv), framework.DirAttrs{Mode: 0o777, UID: 1500, GID: 0})
}

func statOf(info os.FileInfo) *syscall.Stat_t {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st
	}
	return &syscall.Stat_t{}
}
