//go:build e2e

package functional

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/uuid"
)

// TestBadInputTarget covers class parameters that are well-formed but point nowhere usable: a
// server name that does not resolve and a share the server does not export. The claim gets a
// Warning Event naming the parameter, no PV is made, nothing is written.
func TestBadInputTarget(t *testing.T) {
	cases := []struct {
		name       string
		parameters map[string]string
		mentions   []string
		notCreated string // a path that must not appear
	}{
		{"server that does not resolve", map[string]string{"server": "nfs-server.invalid"},
			[]string{"nfs-server.invalid", "server"}, ""},
		{"share that is not exported", map[string]string{"share": fw.Env.ExportDir + "-not-exported"},
			[]string{fw.Env.ExportDir + "-not-exported", "share"}, fw.Env.ExportDir + "-not-exported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			namespace := fw.CreateNamespace(t, "badtarget")
			class := fw.CreateClass(t, framework.ClassOptions{Parameters: c.parameters})
			outside := outsideExportSnapshot(t)
			claim := fw.CreateClaim(t, namespace, framework.ClaimOptions{Name: "data", Class: class.Name})
			fw.WaitWarningEvent(t, claim, framework.FailureReason, c.mentions...)
			fw.AssertNoVolumeForClaim(t, claim)
			outside.assertUnchanged(t)
			if c.notCreated != "" {
				framework.AssertNotExists(t, c.notCreated)
			}
			if found := framework.EntriesMentioning(t, fw.Env.ExportDir, 2, namespace, string(claim.UID)); len(found) > 0 {
				t.Errorf("created on the export for a refused claim: %v", found)
			}
		})
	}
}

// TestBadInputPathTricks feeds path tricks the path-pattern suite does not cover through a claim
// annotation: each is refused with a Warning Event and nothing lands anywhere.
func TestBadInputPathTricks(t *testing.T) {
	tricks := []struct{ name, value string }{
		{"trailing parent", "escaped/.."},
		{"bare parent", ".."},
		{"parent after dot segments", "./././../escaped"},
		{"dot: the export root itself", "."},
		{"slashes and dots: the export root itself", ".//./"},
		{"newline", "escaped\nname"},
		{"tab", "escaped\tname"},
		{"NUL", "escaped\x00name"},
		{"component over 255 bytes", "escaped-" + strings.Repeat("x", 300)},
	}
	for _, trick := range tricks {
		t.Run(trick.name, func(t *testing.T) {
			namespace := fw.CreateNamespace(t, "tricks")
			class := fw.CreateClass(t, framework.ClassOptions{Parameters: map[string]string{"pathPattern": "${.PVC.annotations.dir}"}})
			outside := outsideExportSnapshot(t)
			before := framework.ListNames(t, fw.Env.ExportDir)
			claim := &corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: namespace, Annotations: map[string]string{"dir": trick.value}},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
					StorageClassName: &class.Name,
					Resources: corev1.VolumeResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(framework.ClaimSize)},
					},
				},
			}
			created, err := fw.Cluster.Clientset.CoreV1().PersistentVolumeClaims(namespace).Create(framework.Context(t), claim, metav1.CreateOptions{})
			if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
				t.Skipf("the API server itself refuses the annotation value: %v", err)
			}
			if err != nil {
				t.Fatalf("creating the claim: %v", err)
			}
			fw.WaitWarningEvent(t, created, framework.FailureReason, "pathPattern")
			fw.AssertNoVolumeForClaim(t, created)
			outside.assertUnchanged(t)
			for name := range framework.ListNames(t, fw.Env.ExportDir) {
				if !before[name] && strings.Contains(name, "escaped") {
					t.Errorf("%s appeared on the export", name)
				}
			}
		})
	}
}

// TestBadInputLongNames provisions two claims whose default directory names are over 255 bytes
// and identical for their first 255: each gets its own, shortened, directory.
func TestBadInputLongNames(t *testing.T) {
	namespace := fw.CreateNamespace(t, "longnames")
	class := fw.CreateClass(t, framework.ClassOptions{})
	base := strings.Repeat("n", 240)
	var dirs []string
	for _, suffix := range []string{"-a", "-b"} {
		fw.CreateClaim(t, namespace, framework.ClaimOptions{Name: base + suffix, Class: class.Name})
	}
	for _, suffix := range []string{"-a", "-b"} {
		_, volume := fw.WaitClaimBound(t, namespace, base+suffix)
		dir := fw.DefaultExport().VolumeDir(t, volume)
		if len(filepath.Base(dir)) > 255 {
			t.Errorf("directory name is %d bytes, over 255", len(filepath.Base(dir)))
		}
		framework.AssertDir(t, dir, framework.DirAttrs{Mode: 0o777})
		dirs = append(dirs, dir)
	}
	if len(dirs) == 2 && dirs[0] == dirs[1] {
		t.Errorf("two claims share directory %s after shortening", dirs[0])
	}
}

// TestDeleteSafety hands the shared provisioner PVs made by hand (as a user might, or as a
// mistake might) and checks that Delete never removes or archives the export root, anything
// outside the export, or a directory a live PV uses; that a PV whose directory is gone deletes
// cleanly; and that an existing archive is never overwritten.
func TestDeleteSafety(t *testing.T) {
	namespace := fw.CreateNamespace(t, "delsafety")
	exportRoot := fw.Env.ExportDir
	rootMarker := filepath.Join(exportRoot, "e2e-root-marker-"+namespace)
	if err := os.WriteFile(rootMarker, []byte("root"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(rootMarker) })
	outsideDir := filepath.Join(filepath.Dir(exportRoot), "e2e-outside-"+namespace)
	if err := os.MkdirAll(outsideDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(outsideDir) })
	outsideMarker, outsideContent := framework.WriteMarker(t, outsideDir)

	refused := []struct {
		name        string
		path        string
		annotations map[string]string
		mentions    string
	}{
		{"export root, no annotations (anchor-made PV)", fw.Env.NFSPath, nil, "not below"},
		{"export root with this provisioner's annotations", fw.Env.NFSPath,
			map[string]string{"nfs-subdir-provisioner.io/share": fw.Env.NFSPath, "nfs-subdir-provisioner.io/directory": "", "nfs-subdir-provisioner.io/on-delete": "delete"}, "export root"},
		{"outside the export, no annotations", outsideDir, nil, "not below"},
		{"outside the export through .. in the annotations", outsideDir,
			map[string]string{"nfs-subdir-provisioner.io/share": fw.Env.NFSPath, "nfs-subdir-provisioner.io/directory": "../" + filepath.Base(outsideDir), "nfs-subdir-provisioner.io/on-delete": "delete"}, ".."},
	}
	for _, c := range refused {
		t.Run("refused: "+c.name, func(t *testing.T) {
			volume := createReleasedVolume(t, namespace, c.path, c.annotations)
			waitVolumeEvent(t, volume.Name, "VolumeFailedDelete", c.mentions)
			framework.AssertExists(t, exportRoot)
			framework.AssertFileContent(t, rootMarker, "root")
			framework.AssertFileContent(t, outsideMarker, outsideContent)
			if _, err := fw.Cluster.Clientset.CoreV1().PersistentVolumes().Get(framework.Context(t), volume.Name, metav1.GetOptions{}); err != nil {
				t.Errorf("the refused PV %s should stay for the admin to deal with: %v", volume.Name, err)
			}
		})
	}

	t.Run("kept: directory another live PV uses", func(t *testing.T) {
		class := fw.CreateClass(t, framework.ClassOptions{Parameters: map[string]string{"onDelete": "delete"}})
		fw.CreateClaim(t, namespace, framework.ClaimOptions{Name: "live", Class: class.Name})
		_, live := fw.WaitClaimBound(t, namespace, "live")
		dir := fw.DefaultExport().VolumeDir(t, live)
		marker, content := framework.WriteMarker(t, dir)
		rel := filepath.Base(dir)
		volume := createReleasedVolume(t, namespace, live.Spec.NFS.Path, map[string]string{
			"nfs-subdir-provisioner.io/share": fw.Env.NFSPath, "nfs-subdir-provisioner.io/directory": rel, "nfs-subdir-provisioner.io/on-delete": "delete",
		})
		waitVolumeEvent(t, volume.Name, "DirectoryKept", live.Name)
		fw.WaitVolumeGone(t, volume.Name)
		framework.AssertFileContent(t, marker, content)
		fw.DeleteClaim(t, namespace, "live")
		fw.WaitVolumeGone(t, live.Name)
		framework.AssertNotExists(t, dir)
	})

	t.Run("directory already gone: the PV deletes cleanly", func(t *testing.T) {
		rel := "e2e-gone-" + namespace
		volume := createReleasedVolume(t, namespace, fw.Env.NFSPath+"/"+rel, map[string]string{
			"nfs-subdir-provisioner.io/share": fw.Env.NFSPath, "nfs-subdir-provisioner.io/directory": rel, "nfs-subdir-provisioner.io/on-delete": "archive",
		})
		fw.WaitVolumeGone(t, volume.Name)
		framework.AssertNotExists(t, filepath.Join(exportRoot, rel))
		framework.AssertNotExists(t, filepath.Join(exportRoot, "archived-"+rel))
	})

	t.Run("existing archive is never overwritten", func(t *testing.T) {
		rel := "e2e-arch-" + namespace
		dir, archived := filepath.Join(exportRoot, rel), filepath.Join(exportRoot, "archived-"+rel)
		for _, d := range []string{dir, archived} {
			if err := os.Mkdir(d, 0o777); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			os.RemoveAll(dir)
			os.RemoveAll(archived)
			os.RemoveAll(archived + "-2")
		})
		if err := os.WriteFile(filepath.Join(archived, "marker.txt"), []byte("the older archive"), 0o644); err != nil {
			t.Fatal(err)
		}
		marker, content := framework.WriteMarker(t, dir)
		volume := createReleasedVolume(t, namespace, fw.Env.NFSPath+"/"+rel, map[string]string{
			"nfs-subdir-provisioner.io/share": fw.Env.NFSPath, "nfs-subdir-provisioner.io/directory": rel, "nfs-subdir-provisioner.io/on-delete": "archive",
		})
		fw.WaitVolumeGone(t, volume.Name)
		framework.AssertNotExists(t, dir)
		framework.AssertFileContent(t, filepath.Join(archived, "marker.txt"), "the older archive")
		framework.AssertFileContent(t, filepath.Join(archived+"-2", filepath.Base(marker)), content)
	})
}

// createReleasedVolume makes an NFS PV "provisioned" by the shared provisioner, reclaim policy
// Delete, bound to a claim that does not exist: the controller-manager releases it, and the
// provisioner is asked to delete it.
func createReleasedVolume(t *testing.T, namespace, nfsPath string, annotations map[string]string) *corev1.PersistentVolume {
	t.Helper()
	all := map[string]string{"pv.kubernetes.io/provisioned-by": fw.Provisioner}
	for k, v := range annotations {
		all[k] = v
	}
	volume := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-handmade-", Annotations: all, Labels: map[string]string{framework.TestLabelKey: framework.TestLabelValue}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(framework.ClaimSize)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: namespace, Name: "never-existed", UID: uuid.NewUUID()},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: fw.Env.NFSServer, Path: nfsPath}},
		},
	}
	created, err := fw.Cluster.Clientset.CoreV1().PersistentVolumes().Create(framework.Context(t), volume, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a hand-made PV: %v", err)
	}
	t.Cleanup(func() { deleteVolume(t, created.Name) })
	return created
}

// waitVolumeEvent waits for a Warning Event with the reason on the PV whose message contains
// fragment.
func waitVolumeEvent(t *testing.T, name, reason, fragment string) {
	t.Helper()
	selector := fields.Set{"involvedObject.kind": "PersistentVolume", "involvedObject.name": name, "type": corev1.EventTypeWarning}.AsSelector().String()
	framework.Poll(t, fmt.Sprintf("a Warning Event %s on PV %s mentioning %q", reason, name, fragment), framework.EventTimeout, func(ctx context.Context) (bool, error) {
		events, err := fw.Cluster.Clientset.CoreV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: selector})
		if err != nil {
			return false, err
		}
		var seen []string
		for _, event := range events.Items {
			seen = append(seen, event.Reason+": "+event.Message)
			if event.Reason == reason && strings.Contains(event.Message, fragment) {
				return true, nil
			}
		}
		return false, fmt.Errorf("warnings so far: %q", seen)
	})
}
