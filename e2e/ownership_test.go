//go:build e2e

package e2e

import (
	"strconv"
	"testing"
)

const (
	annotationMode = "k8s-sigs.io/nfs-directory-mode"
	annotationUID  = "k8s-sigs.io/nfs-directory-uid"
	annotationGID  = "k8s-sigs.io/nfs-directory-gid"
)

// TestOwnership checks the owner and mode of provisioned directories with stat on the export.
func TestOwnership(t *testing.T) {
	t.Run("uid gid and mode from the class", func(t *testing.T) {
		dir := provisionDir(t, defaultExport(), map[string]string{"uid": "1234", "gid": "5678", "mode": "0750"}, nil)
		assertDir(t, dir, dirAttrs{mode: 0o750, uid: 1234, gid: 5678})
	})
	t.Run("PVC annotations override the class", func(t *testing.T) {
		dir := provisionDir(t, defaultExport(),
			map[string]string{"uid": "1234", "gid": "5678", "mode": "0750"},
			map[string]string{annotationUID: "4321", annotationGID: "8765", annotationMode: "0700"})
		assertDir(t, dir, dirAttrs{mode: 0o700, uid: 4321, gid: 8765})
	})
	t.Run("PVC annotations on a class without owner settings", func(t *testing.T) {
		dir := provisionDir(t, defaultExport(), nil,
			map[string]string{annotationUID: "1001", annotationGID: "1002", annotationMode: "0775"})
		assertDir(t, dir, dirAttrs{mode: 0o775, uid: 1001, gid: 1002})
	})
	t.Run("root_squash export with the class uid that owns its root", func(t *testing.T) {
		uid, gid := suite.env.squashExportUID, suite.env.squashExportGID
		dir := provisionDir(t, squashExport(), map[string]string{
			"server": suite.env.nfsServer,
			"share":  suite.env.squashNFSPath,
			"uid":    itoa(uid),
			"gid":    itoa(gid),
			"mode":   "0770",
		}, nil)
		assertDir(t, dir, dirAttrs{mode: 0o770, uid: uid, gid: gid})
	})
	t.Run("root_squash export as root is refused with a Warning Event", func(t *testing.T) {
		namespace := createNamespace(t, "squash")
		class := createClass(t, classOptions{parameters: map[string]string{"share": suite.env.squashNFSPath}})
		claim := createClaim(t, namespace, claimOptions{name: "data", class: class.Name})
		waitWarningEvent(t, claim, warningReason)
		assertNoVolumeForClaim(t, claim)
		if found := entriesMentioning(t, suite.env.squashExportDir, 2, namespace); len(found) > 0 {
			t.Errorf("created on the root_squash export for a refused claim: %v", found)
		}
	})
}

// provisionDir provisions one claim on a fresh class and namespace and returns its directory on
// the given export.
func provisionDir(t *testing.T, export exportBacking, classParameters, claimAnnotations map[string]string) string {
	t.Helper()
	namespace := createNamespace(t, "owner")
	class := createClass(t, classOptions{parameters: classParameters})
	createClaim(t, namespace, claimOptions{name: "data", class: class.Name, annotations: claimAnnotations})
	_, volume := waitClaimBound(t, namespace, "data")
	return export.volumeDir(t, volume)
}

func itoa(id uint32) string {
	return strconv.FormatUint(uint64(id), 10)
}
