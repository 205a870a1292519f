//go:build e2e

package functional

import (
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// TestBadClassParameters provisions on classes with one wrong parameter each: the claim gets a
// Warning Event naming the parameter, and neither a PV nor a directory appears.
func TestBadClassParameters(t *testing.T) {
	cases := []struct {
		name       string
		parameters map[string]string
		mentions   string
	}{
		{"unknown parameter", map[string]string{"archiveOnDelet": "false"}, "archiveOnDelet"},
		{"archiveOnDelete not a boolean", map[string]string{"archiveOnDelete": "maybe"}, "archiveOnDelete"},
		{"onDelete not a policy", map[string]string{"onDelete": "shred"}, "onDelete"},
		// Stricter than nfs-subdir-external-provisioner, where onDelete silently wins.
		{"onDelete contradicting archiveOnDelete", map[string]string{"onDelete": "archive", "archiveOnDelete": "false"}, "onDelete"},
		{"mode not octal", map[string]string{"mode": "rwxr-xr-x"}, "mode"},
		{"mode out of range", map[string]string{"mode": "77777"}, "mode"},
		{"uid not a number", map[string]string{"uid": "nobody"}, "uid"},
		{"gid negative", map[string]string{"gid": "-1"}, "gid"},
		{"absolute pathPattern", map[string]string{"pathPattern": "/${.PVC.namespace}"}, "pathPattern"},
		{"pathPattern with parent traversal", map[string]string{"pathPattern": "../${.PVC.namespace}"}, "pathPattern"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			namespace := fw.CreateNamespace(t, "badparam")
			class := fw.CreateClass(t, framework.ClassOptions{Parameters: c.parameters})
			outside := outsideExportSnapshot(t)
			claim := fw.CreateClaim(t, namespace, framework.ClaimOptions{Name: "data", Class: class.Name})
			fw.WaitWarningEvent(t, claim, framework.FailureReason, c.mentions)
			fw.AssertNoVolumeForClaim(t, claim)
			outside.assertUnchanged(t)
			if found := framework.EntriesMentioning(t, fw.Env.ExportDir, 2, namespace, string(claim.UID)); len(found) > 0 {
				t.Errorf("created on the export for a refused claim: %v", found)
			}
		})
	}
}
