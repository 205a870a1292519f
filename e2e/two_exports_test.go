//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestTwoExports serves two exports from one provisioner: the default one from NFS_SERVER and
// NFS_PATH, and a second one named by the class parameters server and share.
func TestTwoExports(t *testing.T) {
	namespace := createNamespace(t, "exports")
	defaultClass := createClass(t, classOptions{})
	// "localhost" rather than the IP of NFS_SERVER, so the PV shows the class's server was used.
	const otherServer = "localhost"
	otherClass := createClass(t, classOptions{parameters: map[string]string{
		"server": otherServer,
		"share":  suite.env.squashNFSPath,
		"uid":    itoa(suite.env.squashExportUID),
		"gid":    itoa(suite.env.squashExportGID),
	}})
	createClaim(t, namespace, claimOptions{name: "on-default", class: defaultClass.Name})
	createClaim(t, namespace, claimOptions{name: "on-other", class: otherClass.Name})
	_, defaultVolume := waitClaimBound(t, namespace, "on-default")
	_, otherVolume := waitClaimBound(t, namespace, "on-other")

	var defaultDir, otherDir string
	t.Run("claim on the default export", func(t *testing.T) {
		if defaultVolume.Spec.NFS.Server != suite.env.nfsServer || !strings.HasPrefix(defaultVolume.Spec.NFS.Path, suite.env.nfsPath+"/") {
			t.Errorf("PV spec.nfs %+v, want server %s and a path below %s", defaultVolume.Spec.NFS, suite.env.nfsServer, suite.env.nfsPath)
		}
		defaultDir = defaultExport().volumeDir(t, defaultVolume)
		assertDir(t, defaultDir, dirAttrs{mode: 0o777})
	})
	t.Run("claim on the class's server and share", func(t *testing.T) {
		if otherVolume.Spec.NFS.Server != otherServer || !strings.HasPrefix(otherVolume.Spec.NFS.Path, suite.env.squashNFSPath+"/") {
			t.Errorf("PV spec.nfs %+v, want server %s and a path below %s", otherVolume.Spec.NFS, otherServer, suite.env.squashNFSPath)
		}
		otherDir = squashExport().volumeDir(t, otherVolume)
		assertDir(t, otherDir, dirAttrs{mode: 0o777, uid: suite.env.squashExportUID, gid: suite.env.squashExportGID})
		if found := entriesMentioning(t, suite.env.exportDir, 1, otherVolume.Name); len(found) > 0 {
			t.Errorf("the second export's claim also created %v on the default export", found)
		}
	})
	t.Run("each claim is archived on its own export", func(t *testing.T) {
		for _, claim := range []string{"on-default", "on-other"} {
			deleteClaim(t, namespace, claim)
		}
		waitVolumeGone(t, defaultVolume.Name)
		waitVolumeGone(t, otherVolume.Name)
		for _, dir := range []string{defaultDir, otherDir} {
			if dir == "" {
				continue // its subtest failed already
			}
			assertNotExists(t, dir)
			assertExists(t, filepath.Join(filepath.Dir(dir), "archived-"+filepath.Base(dir)))
		}
	})
}
