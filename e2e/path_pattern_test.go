//go:build e2e

package e2e

import (
	"path/filepath"
	"testing"
)

// TestPathPattern checks the directories that class pathPattern values produce, and that a
// pattern expanding outside the export is refused.
func TestPathPattern(t *testing.T) {
	t.Run("namespace, label and annotation with dots and slashes in the key", func(t *testing.T) {
		namespace := createNamespace(t, "pattern")
		class := createClass(t, classOptions{parameters: map[string]string{
			"pathPattern": "${.PVC.namespace}/${.PVC.labels.app}/${.PVC.annotations.example.com/owner}",
		}})
		createClaim(t, namespace, claimOptions{
			name:        "data",
			class:       class.Name,
			labels:      map[string]string{"app": "web"},
			annotations: map[string]string{"example.com/owner": "team-a"},
		})
		_, volume := waitClaimBound(t, namespace, "data")
		if want := suite.env.nfsPath + "/" + namespace + "/web/team-a"; volume.Spec.NFS.Path != want {
			t.Errorf("PV path %q, want %q", volume.Spec.NFS.Path, want)
		}
		dir := filepath.Join(suite.env.exportDir, namespace, "web", "team-a")
		assertDir(t, dir, dirAttrs{mode: 0o777})

		t.Run("deleting archives the last component in its own parent", func(t *testing.T) {
			deleteClaim(t, namespace, "data")
			waitVolumeGone(t, volume.Name)
			assertNotExists(t, dir)
			assertExists(t, filepath.Join(suite.env.exportDir, namespace, "web", "archived-team-a"))
		})
	})

	t.Run("claim name pattern", func(t *testing.T) {
		namespace := createNamespace(t, "pattern")
		class := createClass(t, classOptions{parameters: map[string]string{"pathPattern": "by-name/${.PVC.namespace}-${.PVC.name}"}})
		createClaim(t, namespace, claimOptions{name: "cache", class: class.Name})
		_, volume := waitClaimBound(t, namespace, "cache")
		if want := suite.env.nfsPath + "/by-name/" + namespace + "-cache"; volume.Spec.NFS.Path != want {
			t.Errorf("PV path %q, want %q", volume.Spec.NFS.Path, want)
		}
		assertDir(t, filepath.Join(suite.env.exportDir, "by-name", namespace+"-cache"), dirAttrs{mode: 0o777})
	})

	t.Run("empty expansion falls back to the default name", func(t *testing.T) {
		namespace := createNamespace(t, "pattern")
		class := createClass(t, classOptions{parameters: map[string]string{"pathPattern": "${.PVC.annotations.not-set}"}})
		createClaim(t, namespace, claimOptions{name: "data", class: class.Name})
		_, volume := waitClaimBound(t, namespace, "data")
		if want := suite.env.nfsPath + "/" + namespace + "-data-" + volume.Name; volume.Spec.NFS.Path != want {
			t.Errorf("PV path %q, want %q (the default name, never the export root)", volume.Spec.NFS.Path, want)
		}
		assertDir(t, filepath.Join(suite.env.exportDir, namespace+"-data-"+volume.Name), dirAttrs{mode: 0o777})
	})

	traversals := []struct{ name, value string }{
		{"parent traversal", "../../escaped"},
		{"traversal inside a path", "a/../../escaped"},
		{"absolute path", "/etc/escaped"},
	}
	for _, traversal := range traversals {
		t.Run("annotation with "+traversal.name+" is refused", func(t *testing.T) {
			namespace := createNamespace(t, "traversal")
			class := createClass(t, classOptions{parameters: map[string]string{"pathPattern": "${.PVC.annotations.dir}"}})
			outside := outsideExportSnapshot(t)
			claim := createClaim(t, namespace, claimOptions{
				name:        "data",
				class:       class.Name,
				annotations: map[string]string{"dir": traversal.value},
			})
			waitWarningEvent(t, claim, warningReason)
			assertNoVolumeForClaim(t, claim)
			outside.assertUnchanged(t)
			// Where the value would land if it were used as a path: below the export's backing
			// directory joined naively, and as itself when absolute.
			assertNotExists(t, filepath.Join(suite.env.exportDir, traversal.value))
			if filepath.IsAbs(traversal.value) {
				assertNotExists(t, traversal.value)
			}
			if found := entriesMentioning(t, suite.env.exportDir, 3, "escaped", namespace); len(found) > 0 {
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
	dir := filepath.Clean(suite.env.exportDir)
	for level := 0; level < 2 && filepath.Dir(dir) != dir; level++ {
		dir = filepath.Dir(dir)
		snapshot[dir] = listNames(t, dir)
	}
	return snapshot
}

func (s directorySnapshot) assertUnchanged(t *testing.T) {
	t.Helper()
	for dir, before := range s {
		for name := range listNames(t, dir) {
			if !before[name] {
				t.Errorf("%s appeared outside the export", filepath.Join(dir, name))
			}
		}
	}
}
