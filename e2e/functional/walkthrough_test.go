//go:build e2e

package functional

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const (
	walkthroughNamespace   = "default"
	walkthroughStatefulSet = "redis-pv-sts"
	walkthroughTemplate    = "redis-100m-pvc"
	walkthroughClass       = "nfs-client"
	walkthroughReplicas    = 2
	rolloutTimeout         = 3 * time.Minute
)

// TestWalkthrough is the scenario of the anchor project's users: the redis StatefulSet from
// deploy/examples on class nfs-client from deploy/class.yaml.
func TestWalkthrough(t *testing.T) {
	ctx := framework.Context(t)
	applyWalkthroughManifests(t)

	claims := make([]*corev1.PersistentVolumeClaim, walkthroughReplicas)
	volumes := make([]*corev1.PersistentVolume, walkthroughReplicas)
	t.Run("StatefulSet rolls out with a Bound claim per replica", func(t *testing.T) {
		waitStatefulSetReady(t, walkthroughReplicas)
		for i := range claims {
			claims[i], volumes[i] = fw.WaitClaimBound(t, walkthroughNamespace, walkthroughClaimName(i))
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("PVs point at per-claim directories with mode 0777", func(t *testing.T) {
		for i, volume := range volumes {
			assertProvisionedVolume(t, claims[i], volume, walkthroughClass)
			wantDir := fmt.Sprintf("default-%s-%s", walkthroughClaimName(i), volume.Name)
			wantPath := fw.Env.NFSPath + "/" + wantDir
			if volume.Spec.NFS.Path != wantPath {
				t.Errorf("PV %s path %q, want %q", volume.Name, volume.Spec.NFS.Path, wantPath)
			}
			framework.AssertDir(t, filepath.Join(fw.Env.ExportDir, wantDir), framework.DirAttrs{Mode: 0o777})
		}
	})

	const dataFile, dataContent = "dump.rdb", "REDIS0011 written by replica 0"
	t.Run("a file written over NFS in replica 0's volume survives deleting pod 0", func(t *testing.T) {
		volume0 := volumes[0]
		writeOverNFS(t, volume0, dataFile, dataContent)
		framework.AssertFileContent(t, filepath.Join(fw.DefaultExport().VolumeDir(t, volume0), dataFile), dataContent)

		oldPod := getPod(t, walkthroughStatefulSet+"-0")
		if err := fw.Cluster.Clientset.CoreV1().Pods(walkthroughNamespace).Delete(ctx, oldPod.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting pod %s: %v", oldPod.Name, err)
		}
		newPod := waitPodRecreatedReady(t, oldPod)
		if got := podClaimName(newPod); got != claims[0].Name {
			t.Errorf("recreated pod uses claim %q, want %q", got, claims[0].Name)
		}
		claim, volume := fw.WaitClaimBound(t, walkthroughNamespace, claims[0].Name)
		if claim.UID != claims[0].UID || volume.Name != volume0.Name {
			t.Errorf("after the pod was recreated: claim %s bound to %s; want the same claim %s and PV %s",
				claim.UID, volume.Name, claims[0].UID, volume0.Name)
		}
		if got := readOverNFS(t, volume, dataFile); got != dataContent {
			t.Errorf("%s read over NFS after the pod was recreated: %q, want %q", dataFile, got, dataContent)
		}
		framework.AssertFileContent(t, filepath.Join(fw.DefaultExport().VolumeDir(t, volume), dataFile), dataContent)
	})

	t.Run("deleting the StatefulSet's claims archives their directories", func(t *testing.T) {
		deleteStatefulSet(t)
		for i, volume := range volumes {
			dir := fw.DefaultExport().VolumeDir(t, volume)
			fw.DeleteClaim(t, walkthroughNamespace, claims[i].Name)
			fw.WaitVolumeGone(t, volume.Name)
			archived := filepath.Join(filepath.Dir(dir), "archived-"+filepath.Base(dir))
			framework.AssertNotExists(t, dir)
			framework.AssertDir(t, archived, framework.DirAttrs{Mode: 0o777})
			if i == 0 {
				framework.AssertFileContent(t, filepath.Join(archived, dataFile), dataContent)
			}
		}
	})
}

// useSuiteProvisioner points StorageClasses at the suite's provisioner (deploy/class.yaml names
// the default one; E2E_PROVISIONER_NAME may choose another).
func useSuiteProvisioner(object *unstructured.Unstructured) error {
	if object.GetKind() != "StorageClass" {
		return nil
	}
	return unstructured.SetNestedField(object.Object, fw.Provisioner, "provisioner")
}

func walkthroughClaimName(replica int) string {
	return fmt.Sprintf("%s-%s-%d", walkthroughTemplate, walkthroughStatefulSet, replica)
}

// applyWalkthroughManifests applies deploy/class.yaml and deploy/examples/redis-statefulset.yaml
// as a user would, and removes what they created when the test ends.
func applyWalkthroughManifests(t *testing.T) {
	t.Helper()
	requireLeadingProvisioner(t)
	ctx := framework.Context(t)
	if _, err := fw.Cluster.Clientset.StorageV1().StorageClasses().Get(ctx, walkthroughClass, metav1.GetOptions{}); err == nil {
		t.Fatalf("StorageClass %s already exists: is `make demo` running on this cluster? (make testbed-down)", walkthroughClass)
	}
	for _, manifest := range []string{"deploy/class.yaml", "deploy/examples/redis-statefulset.yaml"} {
		path := filepath.Join(fw.Env.RepoRoot, manifest)
		if _, err := fw.Cluster.ApplyManifestFileWith(ctx, path, walkthroughNamespace, useSuiteProvisioner); err != nil {
			t.Fatalf("applying %s: %v", manifest, err)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		background := metav1.DeletePropagationBackground
		options := metav1.DeleteOptions{PropagationPolicy: &background}
		core := fw.Cluster.Clientset.CoreV1()
		ignoreNotFound(t, fw.Cluster.Clientset.AppsV1().StatefulSets(walkthroughNamespace).Delete(ctx, walkthroughStatefulSet, options))
		ignoreNotFound(t, core.Services(walkthroughNamespace).Delete(ctx, walkthroughStatefulSet, options))
		for i := 0; i < walkthroughReplicas; i++ {
			ignoreNotFound(t, core.PersistentVolumeClaims(walkthroughNamespace).Delete(ctx, walkthroughClaimName(i), options))
		}
		ignoreNotFound(t, fw.Cluster.Clientset.StorageV1().StorageClasses().Delete(ctx, walkthroughClass, options))
	})
}

func ignoreNotFound(t *testing.T, err error) {
	t.Helper()
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("cleaning up: %v", err)
	}
}

func waitStatefulSetReady(t *testing.T, replicas int32) {
	t.Helper()
	framework.Poll(t, fmt.Sprintf("StatefulSet %s to have %d ready replicas", walkthroughStatefulSet, replicas), rolloutTimeout,
		func(ctx context.Context) (bool, error) {
			set, err := fw.Cluster.Clientset.AppsV1().StatefulSets(walkthroughNamespace).Get(ctx, walkthroughStatefulSet, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if set.Status.ReadyReplicas != replicas {
				return false, fmt.Errorf("%d of %d replicas ready", set.Status.ReadyReplicas, replicas)
			}
			return true, nil
		})
}

func deleteStatefulSet(t *testing.T) {
	t.Helper()
	ctx := framework.Context(t)
	foreground := metav1.DeletePropagationForeground
	sets := fw.Cluster.Clientset.AppsV1().StatefulSets(walkthroughNamespace)
	if err := sets.Delete(ctx, walkthroughStatefulSet, metav1.DeleteOptions{PropagationPolicy: &foreground}); err != nil {
		t.Fatalf("deleting StatefulSet: %v", err)
	}
	framework.Poll(t, "the StatefulSet and its pods to be gone", rolloutTimeout, func(ctx context.Context) (bool, error) {
		if _, err := sets.Get(ctx, walkthroughStatefulSet, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("StatefulSet still there (%v)", err)
		}
		pods, err := fw.Cluster.Clientset.CoreV1().Pods(walkthroughNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + walkthroughStatefulSet})
		if err != nil {
			return false, err
		}
		return len(pods.Items) == 0, fmt.Errorf("%d pods left", len(pods.Items))
	})
}

func getPod(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	pod, err := fw.Cluster.Clientset.CoreV1().Pods(walkthroughNamespace).Get(framework.Context(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting pod %s: %v", name, err)
	}
	return pod
}

// waitPodRecreatedReady waits for the StatefulSet to replace the pod (same name, new UID) with a Ready one.
func waitPodRecreatedReady(t *testing.T, old *corev1.Pod) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	framework.Poll(t, fmt.Sprintf("pod %s to be recreated and Ready", old.Name), rolloutTimeout, func(ctx context.Context) (bool, error) {
		var err error
		pod, err = fw.Cluster.Clientset.CoreV1().Pods(walkthroughNamespace).Get(ctx, old.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if pod.UID == old.UID {
			return false, fmt.Errorf("still the old pod %s", old.UID)
		}
		return framework.PodReady(pod), fmt.Errorf("new pod %s is %s", pod.UID, pod.Status.Phase)
	})
	return pod
}

func podClaimName(pod *corev1.Pod) string {
	for _, volume := range pod.Spec.Volumes {
		if volume.Name == walkthroughTemplate && volume.PersistentVolumeClaim != nil {
			return volume.PersistentVolumeClaim.ClaimName
		}
	}
	return ""
}

// assertProvisionedVolume checks the PV fields of the compatibility contract.
func assertProvisionedVolume(t *testing.T, claim *corev1.PersistentVolumeClaim, volume *corev1.PersistentVolume, class string) {
	t.Helper()
	if want := "pvc-" + string(claim.UID); volume.Name != want {
		t.Errorf("PV name %q, want %q", volume.Name, want)
	}
	if got := volume.Annotations["pv.kubernetes.io/provisioned-by"]; got != fw.Provisioner {
		t.Errorf("PV %s provisioned-by %q, want %q", volume.Name, got, fw.Provisioner)
	}
	if volume.Spec.StorageClassName != class {
		t.Errorf("PV %s class %q, want %q", volume.Name, volume.Spec.StorageClassName, class)
	}
	if volume.Spec.NFS == nil || volume.Spec.NFS.Server != fw.Env.NFSServer {
		t.Errorf("PV %s spec.nfs %+v, want server %s", volume.Name, volume.Spec.NFS, fw.Env.NFSServer)
	}
	if got := volume.Spec.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse(framework.ClaimSize)) != 0 {
		t.Errorf("PV %s capacity %s, want %s", volume.Name, got.String(), framework.ClaimSize)
	}
	if len(volume.Spec.AccessModes) != 1 || volume.Spec.AccessModes[0] != corev1.ReadWriteMany {
		t.Errorf("PV %s access modes %v, want [ReadWriteMany]", volume.Name, volume.Spec.AccessModes)
	}
	if volume.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Errorf("PV %s reclaim policy %s, want Delete", volume.Name, volume.Spec.PersistentVolumeReclaimPolicy)
	}
	if ref := volume.Spec.ClaimRef; ref == nil || ref.UID != claim.UID {
		t.Errorf("PV %s claimRef %+v, want claim %s", volume.Name, ref, claim.UID)
	}
}

func writeOverNFS(t *testing.T, volume *corev1.PersistentVolume, name, content string) {
	t.Helper()
	mounted, err := framework.MountNFSVolume(volume.Spec.NFS.Server, volume.Spec.NFS.Path)
	if err != nil {
		t.Fatalf("mounting PV %s like kubelet would: %v", volume.Name, err)
	}
	defer mounted.Close()
	if err := mounted.WriteFile(name, content); err != nil {
		t.Fatal(err)
	}
}

func readOverNFS(t *testing.T, volume *corev1.PersistentVolume, name string) string {
	t.Helper()
	mounted, err := framework.MountNFSVolume(volume.Spec.NFS.Server, volume.Spec.NFS.Path)
	if err != nil {
		t.Fatalf("mounting PV %s like kubelet would: %v", volume.Name, err)
	}
	defer mounted.Close()
	content, err := mounted.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return content
}
