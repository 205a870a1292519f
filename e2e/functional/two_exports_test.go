//go:build e2e

package functional

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// TestTwoExports serves two exports from one provisioner: the default one from NFS_SERVER and
// NFS_PATH, and a second one named by the class parameters server and share.
func TestTwoExports(t *testing.T) {
	namespace := fw.CreateNamespace(t, "exports")
	defaultClass := fw.CreateClass(t, framework.ClassOptions{})
	// "localhost" rather than the IP of NFS_SERVER, so the PV shows the class's server was used.
	const otherServer = "localhost"
	otherClass := fw.CreateClass(t, framework.ClassOptions{Parameters: map[string]string{
		"server": otherServer,
		"share":  fw.Env.SquashNFSPath,
		"uid":    itoa(fw.Env.SquashExportUID),
		"gid":    itoa(fw.Env.SquashExportGID),
	}})
	fw.CreateClaim(t, namespace, framework.ClaimOptions{Name: "on-default", Class: defaultClass.Name})
	fw.CreateClaim(t, namespace, framework.ClaimOptions{Name: "on-other", Class: otherClass.Name})
	_, defaultVolume := fw.WaitClaimBound(t, namespace, "on-default")
	_, otherVolume := fw.WaitClaimBound(t, namespace, "on-other")

	var defaultDir, otherDir string
	t.Run("claim on the default export", func(t *testing.T) {
		if defaultVolume.Spec.NFS.Server != fw.Env.NFSServer || !strings.HasPrefix(defaultVolume.Spec.NFS.Path, fw.Env.NFSPath+"/") {
			t.Errorf("PV spec.nfs %+v, want server %s and a path below %s", defaultVolume.Spec.NFS, fw.Env.NFSServer, fw.Env.NFSPath)
		}
		defaultDir = fw.DefaultExport().VolumeDir(t, defaultVolume)
		framework.AssertDir(t, defaultDir, framework.DirAttrs{Mode: 0o777})
	})
	t.Run("claim on the class's server and share", func(t *testing.T) {
		if otherVolume.Spec.NFS.Server != otherServer || !strings.HasPrefix(otherVolume.Spec.NFS.Path, fw.Env.SquashNFSPath+"/") {
			t.Errorf("PV spec.nfs %+v, want server %s and a path below %s", otherVolume.Spec.NFS, otherServer, fw.Env.SquashNFSPath)
		}
		otherDir = fw.SquashExport().VolumeDir(t, otherVolume)
		framework.AssertDir(t, otherDir, framework.DirAttrs{Mode: 0o777, UID: fw.Env.SquashExportUID, GID: fw.Env.SquashExportGID})
		if found := framework.EntriesMentioning(t, fw.Env.ExportDir, 1, otherVolume.Name); len(found) > 0 {
			t.Errorf("the second export's claim also created %v on the default export", found)
		}
	})
	t.Run("each claim is archived on its own export", func(t *testing.T) {
		for _, claim := range []string{"on-default", "on-other"} {
			fw.DeleteClaim(t, namespace, claim)
		}
		fw.WaitVolumeGone(t, defaultVolume.Name)
		fw.WaitVolumeGone(t, otherVolume.Name)
		for _, dir := range []string{defaultDir, otherDir} {
			if dir == "" {
				continue // its subtest failed already
			}
			framework.AssertNotExists(t, dir)
			framework.AssertExists(t, filepath.Join(filepath.Dir(dir), "archived-"+filepath.Base(dir)))
		}
	})
}
