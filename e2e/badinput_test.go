//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		{"share that is not exported", map[string]string{"share": suite.env.exportDir + "-not-exported"},
			[]string{suite.env.exportDir + "-not-exported", "share"}, suite.env.exportDir + "-not-exported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			namespace := createNamespace(t, "badtarget")
			class := createClass(t, classOptions{parameters: c.parameters})
			outside := outsideExportSnapshot(t)
			claim := createClaim(t, namespace, claimOptions{name: "data", class: class.Name})
			waitWarningEvent(t, claim, warningReason, c.mentions...)
			assertNoVolumeForClaim(t, claim)
			outside.assertUnchanged(t)
			if c.notCreated != "" {
				assertNotExists(t, c.notCreated)
			}
			if found := entriesMentioning(t, suite.env.exportDir, 2, namespace, string(claim.UID)); len(found) > 0 {
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
			namespace := createNamespace(t, "tricks")
			class := createClass(t, classOptions{parameters: map[string]string{"pathPattern": "${.PVC.annotations.dir}"}})
			outside := outsideExportSnapshot(t)
			before := listNames(t, suite.env.exportDir)
			claim := &corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: namespace, Annotations: map[string]string{"dir": trick.value}},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
					StorageClassName: &class.Name,
					Resources: corev1.VolumeResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(claimSize)},
					},
				},
			}
			created, err := suite.cluster.clientset.CoreV1().PersistentVolumeClaims(namespace).Create(testContext(t), claim, metav1.CreateOptions{})
			if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
				t.Skipf("the API server itself refuses the annotation value: %v", err)
			}
			if err != nil {
				t.Fatalf("creating the claim: %v", err)
			}
			waitWarningEvent(t, created, warningReason, "pathPattern")
			assertNoVolumeForClaim(t, created)
			outside.assertUnchanged(t)
			for name := range listNames(t, suite.env.exportDir) {
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
	namespace := createNamespace(t, "longnames")
	class := createClass(t, classOptions{})
	base := strings.Repeat("n", 240)
	var dirs []string
	for _, suffix := range []string{"-a", "-b"} {
		createClaim(t, namespace, claimOptions{name: base + suffix, class: class.Name})
	}
	for _, suffix := range []string{"-a", "-b"} {
		_, volume := waitClaimBound(t, namespace, base+suffix)
		dir := defaultExport().volumeDir(t, volume)
		if len(filepath.Base(dir)) > 255 {
			t.Errorf("directory name is %d bytes, over 255", len(filepath.Base(dir)))
		}
		assertDir(t, dir, dirAttrs{mode: 0o777})
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
	namespace := createNamespace(t, "delsafety")
	exportRoot := suite.env.exportDir
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
	outsideMarker, outsideContent := writeMarker(t, outsideDir)

	refused := []struct {
		name        string
		path        string
		annotations map[string]string
		mentions    string
	}{
		{"export root, no annotations (anchor-made PV)", suite.env.nfsPath, nil, "not below"},
		{"export root with this provisioner's annotations", suite.env.nfsPath,
			map[string]string{"nfs-subdir-provisioner.io/share": suite.env.nfsPath, "nfs-subdir-provisioner.io/directory": "", "nfs-subdir-provisioner.io/on-delete": "delete"}, "export root"},
		{"outside the export, no annotations", outsideDir, nil, "not below"},
		{"outside the export through .. in the annotations", outsideDir,
			map[string]string{"nfs-subdir-provisioner.io/share": suite.env.nfsPath, "nfs-subdir-provisioner.io/directory": "../" + filepath.Base(outsideDir), "nfs-subdir-provisioner.io/on-delete": "delete"}, ".."},
	}
	for _, c := range refused {
		t.Run("refused: "+c.name, func(t *testing.T) {
			volume := createReleasedVolume(t, namespace, c.path, c.annotations)
			waitVolumeEvent(t, volume.Name, "VolumeFailedDelete", c.mentions)
			assertExists(t, exportRoot)
			assertFileContent(t, rootMarker, "root")
			assertFileContent(t, outsideMarker, outsideContent)
			if _, err := suite.cluster.clientset.CoreV1().PersistentVolumes().Get(testContext(t), volume.Name, metav1.GetOptions{}); err != nil {
				t.Errorf("the refused PV %s should stay for the admin to deal with: %v", volume.Name, err)
			}
		})
	}

	t.Run("kept: directory another live PV uses", func(t *testing.T) {
		class := createClass(t, classOptions{parameters: map[string]string{"onDelete": "delete"}})
		createClaim(t, namespace, claimOptions{name: "live", class: class.Name})
		_, live := waitClaimBound(t, namespace, "live")
		dir := defaultExport().volumeDir(t, live)
		marker, content := writeMarker(t, dir)
		rel := filepath.Base(dir)
		volume := createReleasedVolume(t, namespace, live.Spec.NFS.Path, map[string]string{
			"nfs-subdir-provisioner.io/share": suite.env.nfsPath, "nfs-subdir-provisioner.io/directory": rel, "nfs-subdir-provisioner.io/on-delete": "delete",
		})
		waitVolumeEvent(t, volume.Name, "DirectoryKept", live.Name)
		waitVolumeGone(t, volume.Name)
		assertFileContent(t, marker, content)
		deleteClaim(t, namespace, "live")
		waitVolumeGone(t, live.Name)
		assertNotExists(t, dir)
	})

	t.Run("directory already gone: the PV deletes cleanly", func(t *testing.T) {
		rel := "e2e-gone-" + namespace
		volume := createReleasedVolume(t, namespace, suite.env.nfsPath+"/"+rel, map[string]string{
			"nfs-subdir-provisioner.io/share": suite.env.nfsPath, "nfs-subdir-provisioner.io/directory": rel, "nfs-subdir-provisioner.io/on-delete": "archive",
		})
		waitVolumeGone(t, volume.Name)
		assertNotExists(t, filepath.Join(exportRoot, rel))
		assertNotExists(t, filepath.Join(exportRoot, "archived-"+rel))
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
		marker, content := writeMarker(t, dir)
		volume := createReleasedVolume(t, namespace, suite.env.nfsPath+"/"+rel, map[string]string{
			"nfs-subdir-provisioner.io/share": suite.env.nfsPath, "nfs-subdir-provisioner.io/directory": rel, "nfs-subdir-provisioner.io/on-delete": "archive",
		})
		waitVolumeGone(t, volume.Name)
		assertNotExists(t, dir)
		assertFileContent(t, filepath.Join(archived, "marker.txt"), "the older archive")
		assertFileContent(t, filepath.Join(archived+"-2", filepath.Base(marker)), content)
	})
}

// createReleasedVolume makes an NFS PV "provisioned" by the shared provisioner, reclaim policy
// Delete, bound to a claim that does not exist: the controller-manager releases it, and the
// provisioner is asked to delete it.
func createReleasedVolume(t *testing.T, namespace, nfsPath string, annotations map[string]string) *corev1.PersistentVolume {
	t.Helper()
	all := map[string]string{"pv.kubernetes.io/provisioned-by": provisionerName}
	for k, v := range annotations {
		all[k] = v
	}
	volume := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-handmade-", Annotations: all, Labels: map[string]string{testLabelKey: testLabelValue}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(claimSize)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: namespace, Name: "never-existed", UID: uuid.NewUUID()},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: suite.env.nfsServer, Path: nfsPath}},
		},
	}
	created, err := suite.cluster.clientset.CoreV1().PersistentVolumes().Create(testContext(t), volume, metav1.CreateOptions{})
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
	poll(t, fmt.Sprintf("a Warning Event %s on PV %s mentioning %q", reason, name, fragment), eventTimeout, func(ctx context.Context) (bool, error) {
		events, err := suite.cluster.clientset.CoreV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: selector})
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
