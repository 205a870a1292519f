//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// The memory run: the provisioner's RSS with `cached` PersistentVolumes and as many claims in its
// informer caches. They are static, pre-bound PV/PVC pairs on a StorageClass name no provisioner
// serves: the provisioner caches and examines every PV and PVC of the cluster whatever its class,
// so they cost it the same memory as its own, while they cost the test bed no NFS directories and
// no provisioning (which the claim runs measure) and are made and removed quickly. The PVs carry an
// NFS source like the provisioner's own, so its path index holds them too. The controller-manager
// binds the pairs as it would any pre-bound pair, so the cached objects carry its annotations and
// status like real ones. A fresh provisioner is started once they exist (its initial LIST of all of
// them is part of its peak), and provisions `claims` claims of its own to show it works with them.

const benchPairLabel = "e2e.nfs-subdir-provisioner/bench-pair"

func (b *bench) runCached(t *testing.T, cached, claims int) benchResult {
	t.Helper()
	ctx := testContext(t)
	namespace := createNamespace(t, "bench-cached")
	staticClass := "nfsp-bench-static-" + b.runID // no StorageClass of this name exists
	selector := benchPairLabel + "=" + b.runID
	t.Cleanup(func() { b.deletePairs(t, namespace, selector) })

	start := time.Now()
	b.forEach(t, cached, func(ctx context.Context, i int) error {
		volumeName := fmt.Sprintf("nfsp-bench-%s-%05d", b.runID, i)
		claimName := fmt.Sprintf("cached-%05d", i)
		labels := map[string]string{benchPairLabel: b.runID, testLabelKey: testLabelValue}
		volume := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: volumeName, Labels: labels},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(claimSize)},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				StorageClassName:              staticClass,
				PersistentVolumeSource: corev1.PersistentVolumeSource{
					NFS: &corev1.NFSVolumeSource{Server: suite.env.nfsServer, Path: suite.env.nfsPath + "/bench-static-" + b.runID + "/" + volumeName},
				},
				ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: namespace, Name: claimName},
			},
		}
		if _, err := b.client.CoreV1().PersistentVolumes().Create(ctx, volume, metav1.CreateOptions{}); err != nil {
			return err
		}
		claim := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: claimName, Namespace: namespace, Labels: labels},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
				StorageClassName: ptr.To(staticClass),
				VolumeName:       volumeName,
				Resources: corev1.VolumeResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(claimSize)},
				},
			},
		}
		_, err := b.client.CoreV1().PersistentVolumeClaims(namespace).Create(ctx, claim, metav1.CreateOptions{})
		return err
	})
	fmt.Printf("bench: %d static PV/PVC pairs created in %.1fs\n", cached, time.Since(start).Seconds())
	// Let the controller-manager bind them (so they look like real bound pairs), with a deadline.
	bindStart := time.Now()
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, 10*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := b.client.CoreV1().PersistentVolumeClaims(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: "0"})
		if err != nil {
			return false, nil
		}
		bound := 0
		for i := range list.Items {
			if list.Items[i].Status.Phase == corev1.ClaimBound {
				bound++
			}
		}
		return bound == cached, nil
	})
	if err != nil {
		t.Fatalf("the controller-manager did not bind the %d static pairs within 10 minutes: %v", cached, err)
	}
	fmt.Printf("bench: static pairs Bound by the controller-manager %.1fs later\n", time.Since(bindStart).Seconds())

	prov := b.startProvisioner(t, "cached")
	name := fmt.Sprintf("%d cached + N=%d", cached, claims)
	result := b.runClaimsKeepPeak(t, prov, claims, name)
	b.stopProvisioner(t, prov)
	return result
}

// runClaimsKeepPeak is runClaims without resetting the peak RSS, so the peak covers the start-up
// LIST of every cached object as well.
func (b *bench) runClaimsKeepPeak(t *testing.T, prov *provisionerProcess, n int, name string) benchResult {
	t.Helper()
	b.keepPeak = true
	defer func() { b.keepPeak = false }()
	return b.runClaims(t, prov, n, name)
}

// deletePairs removes the static pairs: claims first, then volumes (Retain: they are only
// Released), and waits until both are gone.
func (b *bench) deletePairs(t *testing.T, namespace, selector string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	list := metav1.ListOptions{LabelSelector: selector}
	if err := b.client.CoreV1().PersistentVolumeClaims(namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, list); err != nil {
		t.Errorf("deleting the static claims: %v", err)
	}
	if err := b.client.CoreV1().PersistentVolumes().DeleteCollection(ctx, metav1.DeleteOptions{}, list); err != nil {
		t.Errorf("deleting the static PVs: %v", err)
	}
	err := wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
		claims, err := b.client.CoreV1().PersistentVolumeClaims(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector, Limit: 1})
		if err != nil {
			return false, nil
		}
		volumes, err := b.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{LabelSelector: selector, Limit: 1})
		if err != nil {
			return false, nil
		}
		return len(claims.Items) == 0 && len(volumes.Items) == 0, nil
	})
	if err != nil {
		t.Errorf("static PV/PVC pairs %s still exist after 10 minutes: %v", selector, err)
	}
}
