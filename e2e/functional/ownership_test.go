//go:build e2e

package functional

import (
	"strconv"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

const (
	annotationMode = "k8s-sigs.io/nfs-directory-mode"
	annotationUID  = "k8s-sigs.io/nfs-directory-uid"
	annotationGID  = "k8s-sigs.io/nfs-directory-gid"
)

// TestOwnership checks the owner and mode of provisioned directories with stat on the export.
func TestOwnership(t *testing.T) {
	t.Run("uid gid and mode from the class", func(t *testing.T) {
		dir := provisionDir(t, fw.DefaultExport(), map[string]string{"uid": "1234", "gid": "5678", "mode": "0750"}, nil)
		framework.AssertDir(t, dir, framework.DirAttrs{Mode: 0o750, UID: 1234, GID: 5678})
	})
	t.Run("PVC annotations override the class", func(t *testing.T) {
		dir := provisionDir(t, fw.DefaultExport(),
			map[string]string{"uid": "1234", "gid": "5678", "mode": "0750"},
			map[string]string{annotationUID: "4321", annotationGID: "8765", annotationMode: "0700"})
		framework.AssertDir(t, dir, framework.DirAttrs{Mode: 0o700, UID: 4321, GID: 8765})
	})
	t.Run("PVC annotations on a class without owner settings", func(t *testing.T) {
		dir := provisionDir(t, fw.DefaultExport(), nil,
			map[string]string{annotationUID: "1001", annotationGID: "1002", annotationMode: "0775"})
		framework.AssertDir(t, dir, framework.DirAttrs{Mode: 0o775, UID: 1001, GID: 1002})
	})
	t.Run("root_squash export with the class uid that owns its root", func(t *testing.T) {
		uid, gid := fw.Env.SquashExportUID, fw.Env.SquashExportGID
		dir := provisionDir(t, fw.SquashExport(), map[string]string{
			"server": fw.Env.NFSServer,
			"share":  fw.Env.SquashNFSPath,
			"uid":    itoa(uid),
			"gid":    itoa(gid),
			"mode":   "0770",
		}, nil)
		framework.AssertDir(t, dir, framework.DirAttrs{Mode: 0o770, UID: uid, GID: gid})
	})
	t.Run("root_squash export as root is refused with a Warning Event", func(t *testing.T) {
		namespace := fw.CreateNamespace(t, "squash")
		class := fw.CreateClass(t, framework.ClassOptions{Parameters: map[string]string{"share": fw.Env.SquashNFSPath}})
		claim := fw.CreateClaim(t, namespace, framework.ClaimOptions{Name: "data", Class: class.Name})
		fw.WaitWarningEvent(t, claim, framework.FailureReason)
		fw.AssertNoVolumeForClaim(t, claim)
		if found := framework.EntriesMentioning(t, fw.Env.SquashExportDir, 2, namespace); len(found) > 0 {
			t.Errorf("created on the root_squash export for a refused claim: %v", found)
		}
	})
}

// provisionDir provisions one claim on a fresh class and namespace and returns its directory on
// the given export.
func provisionDir(t *testing.T, export framework.Export, classParameters, claimAnnotations map[string]string) string {
	t.Helper()
	namespace := fw.CreateNamespace(t, "owner")
	class := fw.CreateClass(t, framework.ClassOptions{Parameters: classParameters})
	fw.CreateClaim(t, namespace, framework.ClaimOptions{Name: "data", Class: class.Name, Annotations: claimAnnotations})
	_, volume := fw.WaitClaimBound(t, namespace, "data")
	return export.VolumeDir(t, volume)
}

func itoa(id uint32) string {
	return strconv.FormatUint(uint64(id), 10)
}
