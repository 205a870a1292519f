//go:build e2e

package functional

import (
	"context"
	"fmt"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Expansion on the real controller-manager: it finds no plugin for an nfs PV and waits for an
// external controller; the provisioner completes the resize with external-resizer's status
// protocol, so the PV and the claim both show the new size and no resize is left in progress.

func TestExpansion(t *testing.T) {
	t.Run("100Mi to 200Mi reflected on PV and claim", func(t *testing.T) {
		class := createExpandableClass(t, fw.Provisioner)
		namespace := fw.CreateNamespace(t, "expand")
		fw.CreateClaim(t, namespace, framework.ClaimOptions{Name: "data", Class: class})
		_, pv := fw.WaitClaimBound(t, namespace, "data")
		resizeClaim(t, namespace, "data", "200Mi")
		waitResized(t, namespace, "data", pv.Name, "200Mi")
	})
	t.Run("provisioner restarted in between", func(t *testing.T) {
		run := fw.NewInstance(t, "expand-restart")
		first := run.Start(t, true)
		class := createExpandableClass(t, run.Name)
		fw.CreateClaim(t, run.Namespace, framework.ClaimOptions{Name: "data", Class: class})
		_, pv := fw.WaitClaimBound(t, run.Namespace, "data")
		first.Kill(t)
		resizeClaim(t, run.Namespace, "data", "300Mi") // asked while no provisioner runs
		run.Start(t, true)
		waitResized(t, run.Namespace, "data", pv.Name, "300Mi")
	})
}

func createExpandableClass(t *testing.T, provisioner string) string {
	t.Helper()
	return fw.CreateClass(t, framework.ClassOptions{Provisioner: provisioner, AllowExpansion: true}).Name
}

func resizeClaim(t *testing.T, namespace, name, size string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"resources":{"requests":{"storage":%q}}}}`, size)
	_, err := fw.Cluster.Clientset.CoreV1().PersistentVolumeClaims(namespace).Patch(framework.Context(t), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("asking claim %s/%s for %s: %v", namespace, name, size, err)
	}
}

// waitResized waits until the PV's capacity and the claim's status.capacity are size, and the
// claim has no resize in progress: no allocatedResourceStatuses, no Resizing or
// FileSystemResizePending condition, allocatedResources at size; and a VolumeResizeSuccessful
// Event on the claim says NFS enforces no size.
func waitResized(t *testing.T, namespace, name, pvName, size string) {
	t.Helper()
	want := resource.MustParse(size)
	framework.Poll(t, fmt.Sprintf("claim %s/%s and PV %s at %s", namespace, name, pvName, size), framework.BindTimeout, func(ctx context.Context) (bool, error) {
		pv, err := fw.Cluster.Clientset.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		claim, err := fw.Cluster.Clientset.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pvSize, claimSize, allocated := pv.Spec.Capacity[corev1.ResourceStorage], claim.Status.Capacity[corev1.ResourceStorage], claim.Status.AllocatedResources[corev1.ResourceStorage]
		if pvSize.Cmp(want) != 0 || claimSize.Cmp(want) != 0 || allocated.Cmp(want) != 0 || len(claim.Status.AllocatedResourceStatuses) != 0 {
			return false, fmt.Errorf("PV %s, claim capacity %s, allocated %s, resize statuses %v", pvSize.String(), claimSize.String(), allocated.String(), claim.Status.AllocatedResourceStatuses)
		}
		for _, c := range claim.Status.Conditions {
			if c.Type == corev1.PersistentVolumeClaimResizing || c.Type == corev1.PersistentVolumeClaimFileSystemResizePending {
				return false, fmt.Errorf("condition %s still on the claim", c.Type)
			}
		}
		return true, nil
	})
	claim, err := fw.Cluster.Clientset.CoreV1().PersistentVolumeClaims(namespace).Get(framework.Context(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fw.WaitEvent(t, claim, corev1.EventTypeNormal, "VolumeResizeSuccessful", "not a quota")
}
