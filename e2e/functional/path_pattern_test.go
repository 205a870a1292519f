//go:build e2e

package functional

import (
	"path/filepath"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// TestPathPattern checks the directories that class pathPattern values produce, and that a
// pattern expanding outside the export is refused.
func TestPathPattern(t *testing.T) {
	t.Run("namespace, label and annotation with dots and slashes in the key", func(t *testing.T) {
		namespace := fw.CreateNamespace(t, "pattern")
		class := fw.CreateClass(t, framework.ClassOptions{Parameters: map[string]string{
			"pathPattern": "${.PVC.namespace}/${.PVC.labels.app}/${.PVC.annotations.example.com/owner}",
		}})
		fw.CreateClaim(t, namespace, framework.ClaimOptions{
			Name:        "data",
			Class:       class.Name,
			Labels:      map[string]string{"app": "web"},
			Annotations: map[string]string{"example.com/owner": "team-a"},
		})
		_, volume := fw.WaitClaimBound(t, namespace, "data")
		if want := fw.Env.NFSPath + "/" + namespace + "/web/team-a"; volume.Spec.NFS.Path != want {
			t.Errorf("PV path %q, want %q", volume.Spec.NFS.Path, want)
		}
		dir := filepath.Join(fw.Env.ExportDir, namespace, "web", "team-a")
		framework.AssertDir(t, dir, framework.DirAttrs{Mode: 0o777})

		t.Run("deleting archives the last component in its own parent", func(t *testing.T) {
			fw.DeleteClaim(t, namespace, "data")
			fw.WaitVolumeGone(t, volume.Name)
			framework.AssertNotExists(t, dir)
			framework.AssertExists(t, filepath.Join(fw.Env.ExportDir, namespace, "web", "archived-team-a"))
		})
	})

	t.Run("claim name pattern", func(t *testing.T) {
		namespace := fw.CreateNamespace(t, "pattern")
		class := fw.CreateClass(t, framework.ClassOptions{Parameters: map[string]string{"pathPattern": "by-name/${.PVC.namespace}-${.PVC.name}"}})
		fw.CreateClaim(t, namespace, framework.ClaimOptions{Name: "cache", Class: class.Name})
		_, volume := fw.WaitClaimBound(t, namespace, "cache")
		if want := fw.Env.NFSPath + "/by-name/" + namespace + "-cache"; volume.Spec.NFS.Path != want {
			t.Errorf("PV path %q, want %q", volume.Spec.NFS.Path, want)
		}
		framework.AssertDir(t, filepath.Join(fw.Env.ExportDir, "by-name", namespace+"-cache"), framework.DirAttrs{Mode: 0o777})
	})

	t.Run("empty expansion falls back to the default name", func(t *testing.T) {
		namespace := fw.CreateNamespace(t, "pattern")
		class := fw.CreateClass(t, framework.ClassOptions{Parameters: map[string]string{"pathPattern": "${.PVC.annotations.not-set}"}})
		fw.CreateClaim(t, namespace, framework.ClaimOptions{Name: "data", Class: class.Name})
		_, volume := fw.WaitClaimBound(t, namespace, "data")
		if want := fw.Env.NFSPath + "/" + namespace + "-data-" + volume.Name; volume.Spec.NFS.Path != want {
			t.Errorf("PV path %q, want %q (the default name, never the export root)", volume.Spec.NFS.Path, want)
		}
		framework.AssertDir(t, filepath.Join(fw.Env.ExportDir, namespace+"-data-"+volume.Name), framework.DirAttrs{Mode: 0o777})
	})

	traversals := []struct{ name, value string }{
		{"parent traversal", "../../escaped"},
		{"traversal inside a path", "a/../../escaped"},
		{"absolute path", "/etc/escaped"},
	}
	for _, traversal := range traversals {
		t.Run("annotation with "+traversal.name+" is refused", func(t *testing.T) {
			namespace := fw.CreateNamespace(t, "traversal")
			class := fw.CreateClass(t, framework.ClassOptions{Parameters: map[string]string{"pathPattern": "${.PVC.annotations.dir}"}})
			outside := outsideExportSnapshot(t)
			claim := fw.CreateClaim(t, namespace, framework.ClaimOptions{
				Name:        "data",
				Class:       class.Name,
				Annotations: map[string]string{"dir": traversal.value},
			})
			fw.WaitWarningEvent(t, claim, framework.FailureReason)
			fw.AssertNoVolumeForClaim(t, claim)
			outside.assertUnchanged(t)
			// Where the value would land if it were used as a path: below the export's backing
			// directory joined naively, and as itself when absolute.
			framework.AssertNotExists(t, filepath.Join(fw.Env.ExportDir, traversal.value))
			if filepath.IsAbs(traversal.value) {
				framework.AssertNotExists(t, traversal.value)
			}
			if found := framework.EntriesMentioning(t, fw.Env.ExportDir, 3, "escaped", namespace); len(found) > 0 {
				t.Errorf("created on the export for a refused claim: %v", found)
			}
		})
	}
}

// directorySnapshot records the names in the two directories above the export's backing
// directory, where a traversal would land.
type directorySnapshot map[string]map[string]bool

func outsideExportSnapshot(t *testing.T) directorySnapshot {
	t.Helper()
	snapshot := directorySnapshot{}
	dir := filepath.Clean(fw.Env.ExportDir)
	for level := 0; level < 2 && filepath.Dir(dir) != dir; level++ {
		dir = filepath.Dir(dir)
		snapshot[dir] = framework.ListNames(t, dir)
	}
	return snapshot
}

func (s directorySnapshot) assertUnchanged(t *testing.T) {
	t.Helper()
	for dir, before := range s {
		for name := range framework.ListNames(t, dir) {
			if !before[name] {
				t.Errorf("%s appeared outside the export", filepath.Join(dir, name))
			}
		}
	}
}
