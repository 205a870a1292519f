//go:build e2e

package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// The memory run: the provisioner's RSS with `cached` PersistentVolumes and as many claims in its
// informer caches: static PV/PVC pairs, bound to each other. The PVs look like the provisioner's
// own (its provisioned-by annotation, an NFS source below its export, so its path index holds
// them), which is the costlier case: it keeps its own PVs whole in its cache. Their reclaim
// policy is Retain, so it never acts on them, and their class is a name no StorageClass has. The
// harness writes them bound (claim with volumeName and the bind-completed annotation, PV with the
// claim's UID, both statuses Bound), as the controller-manager would leave them: its binder then
// has nothing to write, where binding 10,000 pairs itself takes it minutes on the test bed. This
// costs no NFS directories and no provisioning (which the claim runs measure). A fresh
// provisioner is started once they exist (its initial sync of all of them is part of its peak),
// and provisions `claims` claims of its own to show it works with them.

const benchPairLabel = "e2e.nfs-subdir-provisioner/bench-pair"

func (b *bench) runCached(t *testing.T, cached, claims int) benchResult {
	t.Helper()
	namespace := fw.CreateNamespace(t, "bench-cached")
	staticClass := "nfsp-bench-static-" + b.runID // no StorageClass of this name exists
	t.Cleanup(func() { b.deletePairs(t, namespace, cached) })

	start := time.Now()
	size := resource.MustParse(framework.ClaimSize)
	b.forEach(t, cached, func(ctx context.Context, i int) error {
		volumeName, claimName := b.pairNames(i)
		labels := map[string]string{benchPairLabel: b.runID, framework.TestLabelKey: framework.TestLabelValue}
		claim := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: claimName, Namespace: namespace, Labels: labels,
				Annotations: map[string]string{"pv.kubernetes.io/bind-completed": "yes"}},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
				StorageClassName: ptr.To(staticClass),
				VolumeName:       volumeName,
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			},
		}
		claim, err := b.client.CoreV1().PersistentVolumeClaims(namespace).Create(ctx, claim, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		volume := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: volumeName, Labels: labels,
				Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": b.provisionerName()}},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				StorageClassName:              staticClass,
				PersistentVolumeSource: corev1.PersistentVolumeSource{
					NFS: &corev1.NFSVolumeSource{Server: fw.Env.NFSServer, Path: fw.Env.NFSPath + "/bench-static-" + b.runID + "/" + volumeName},
				},
				ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: namespace, Name: claimName,
					UID: claim.UID, ResourceVersion: claim.ResourceVersion},
			},
		}
		volume, err = b.client.CoreV1().PersistentVolumes().Create(ctx, volume, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		// The controller-manager may get to the pair first (it sees a PV whose claimRef names an
		// existing claim): on a conflict, read again and write only what is still missing.
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if volume.Status.Phase == corev1.VolumeBound {
				return nil
			}
			volume.Status.Phase = corev1.VolumeBound
			_, err := b.client.CoreV1().PersistentVolumes().UpdateStatus(ctx, volume, metav1.UpdateOptions{})
			if apierrors.IsConflict(err) {
				if latest, getErr := b.client.CoreV1().PersistentVolumes().Get(ctx, volumeName, metav1.GetOptions{}); getErr == nil {
					volume = latest
				}
			}
			return err
		})
		if err != nil {
			return err
		}
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if claim.Status.Phase == corev1.ClaimBound {
				return nil
			}
			claim.Status = corev1.PersistentVolumeClaimStatus{
				Phase:       corev1.ClaimBound,
				AccessModes: volume.Spec.AccessModes,
				Capacity:    volume.Spec.Capacity,
			}
			_, err := b.client.CoreV1().PersistentVolumeClaims(namespace).UpdateStatus(ctx, claim, metav1.UpdateOptions{})
			if apierrors.IsConflict(err) {
				if latest, getErr := b.client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, claimName, metav1.GetOptions{}); getErr == nil {
					claim = latest
				}
			}
			return err
		})
	})
	fmt.Printf("bench: %d bound static PV/PVC pairs written in %.1fs\n", cached, time.Since(start).Seconds())

	prov := b.startProvisioner(t, "cached")
	name := fmt.Sprintf("%d cached + N=%d", cached, claims)
	result := b.runClaimsKeepPeak(t, prov, claims, name)
	b.stopProvisioner(t, prov)
	return result
}

func (b *bench) pairNames(i int) (volume, claim string) {
	return fmt.Sprintf("nfsp-bench-%s-%05d", b.runID, i), fmt.Sprintf("cached-%05d", i)
}

// runClaimsKeepPeak is runClaims without resetting the peak RSS, so the peak covers the start-up
// LIST of every cached object as well.
func (b *bench) runClaimsKeepPeak(t *testing.T, prov *framework.Process, n int, name string) benchResult {
	t.Helper()
	b.keepPeak = true
	defer func() { b.keepPeak = false }()
	return b.runClaims(t, prov, n, name)
}

// deletePairs removes the static pairs, claims first, then volumes (Retain: they are only
// Released), one request each on the harness's workers (a DeleteCollection of 10,000 PVs outlasts
// the API server's request timeout), and waits until the PVs are gone.
func (b *bench) deletePairs(t *testing.T, namespace string, cached int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, kind := range []string{"claims", "volumes"} {
		err := framework.ForEach(ctx, b.cfg.createWorkers, cached, func(ctx context.Context, i int) error {
			volumeName, claimName := b.pairNames(i)
			var err error
			if kind == "claims" {
				err = b.client.CoreV1().PersistentVolumeClaims(namespace).Delete(ctx, claimName, metav1.DeleteOptions{})
			} else {
				err = b.client.CoreV1().PersistentVolumes().Delete(ctx, volumeName, metav1.DeleteOptions{})
			}
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		})
		if err != nil {
			t.Errorf("deleting the static %s: %v", kind, err)
		}
	}
	selector := benchPairLabel + "=" + b.runID
	err := wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
		volumes, err := b.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{LabelSelector: selector, Limit: 1})
		return err == nil && len(volumes.Items) == 0, nil
	})
	if err != nil {
		t.Errorf("static PVs %s still exist after 10 minutes: %v", selector, err)
	}
}
