//go:build e2e

package e2e

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

const (
	pollInterval   = 250 * time.Millisecond
	bindTimeout    = 2 * time.Minute
	deleteTimeout  = 2 * time.Minute
	eventTimeout   = 2 * time.Minute
	claimSize      = "100Mi"
	warningReason  = "ProvisioningFailed"
	testLabelKey   = "e2e.nfs-subdir-provisioner/test"
	testLabelValue = "true"
)

// testContext is a context that ends with the test (or its deadline).
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

// poll runs condition every pollInterval until it is true, fails or timeout passes; a timeout
// fails the test with what it was waiting for and the condition's last error.
func poll(t *testing.T, what string, timeout time.Duration, condition func(ctx context.Context) (bool, error)) {
	t.Helper()
	var lastErr error
	err := wait.PollUntilContextTimeout(testContext(t), pollInterval, timeout, true, func(ctx context.Context) (bool, error) {
		// A condition may explain why it is not done yet with an error; it never stops the polling.
		done, err := condition(ctx)
		if done {
			return true, nil
		}
		// Keep the condition's own reason, not the deadline's (client-go's rate limiter reports
		// it early as "would exceed context deadline").
		if ctx.Err() == nil && (err == nil || !strings.Contains(err.Error(), "context deadline")) {
			lastErr = err
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("waiting %s for %s: %v (last error: %v)", timeout, what, err, lastErr)
	}
}

// createNamespace makes a fresh namespace for one test and deletes it afterwards.
func createNamespace(t *testing.T, prefix string) string {
	t.Helper()
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "e2e-" + prefix + "-",
		Labels:       map[string]string{testLabelKey: testLabelValue},
	}}
	created, err := suite.cluster.clientset.CoreV1().Namespaces().Create(testContext(t), namespace, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() {
		err := suite.cluster.clientset.CoreV1().Namespaces().Delete(context.Background(), created.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", created.Name, err)
		}
	})
	return created.Name
}

// classOptions describe a StorageClass for the provisioner under test.
type classOptions struct {
	name           string // fixed name; empty generates one
	provisioner    string // empty: the suite's provisioner
	allowExpansion bool
	parameters     map[string]string
	reclaimPolicy  corev1.PersistentVolumeReclaimPolicy // empty is Delete
	mountOptions   []string
}

// createClass makes a StorageClass of the provisioner under test and deletes it afterwards.
func createClass(t *testing.T, options classOptions) *storagev1.StorageClass {
	t.Helper()
	if options.provisioner == "" {
		options.provisioner = provisionerName
		requireLeadingProvisioner(t)
	}
	class := &storagev1.StorageClass{
		ObjectMeta:   metav1.ObjectMeta{Name: options.name, Labels: map[string]string{testLabelKey: testLabelValue}},
		Provisioner:  options.provisioner,
		Parameters:   options.parameters,
		MountOptions: options.mountOptions,
	}
	if options.allowExpansion {
		class.AllowVolumeExpansion = ptr.To(true)
	}
	if class.Name == "" {
		class.GenerateName = "e2e-"
	}
	if options.reclaimPolicy != "" {
		class.ReclaimPolicy = ptr.To(options.reclaimPolicy)
	}
	created, err := suite.cluster.clientset.StorageV1().StorageClasses().Create(testContext(t), class, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating StorageClass %s%s: %v", class.Name, class.GenerateName, err)
	}
	t.Cleanup(func() {
		err := suite.cluster.clientset.StorageV1().StorageClasses().Delete(context.Background(), created.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting StorageClass %s: %v", created.Name, err)
		}
	})
	return created
}

// claimOptions describe a PersistentVolumeClaim.
type claimOptions struct {
	name        string
	class       string
	size        string // empty: claimSize
	labels      map[string]string
	annotations map[string]string
	dataSource  *corev1.TypedLocalObjectReference
}

// createClaim makes a ReadWriteMany claim, 100Mi unless options say otherwise. Its deletion is the test's business (that is
// what the delete cases test); the namespace's deletion removes what is left.
func createClaim(t *testing.T, namespace string, options claimOptions) *corev1.PersistentVolumeClaim {
	t.Helper()
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:        options.name,
			Namespace:   namespace,
			Labels:      options.labels,
			Annotations: options.annotations,
		},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			StorageClassName: ptr.To(options.class),
			DataSource:       options.dataSource,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(cmp.Or(options.size, claimSize))},
			},
		},
	}
	created, err := suite.cluster.clientset.CoreV1().PersistentVolumeClaims(namespace).Create(testContext(t), claim, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating claim %s/%s: %v", namespace, options.name, err)
	}
	return created
}

// waitClaimBound waits until the claim is Bound and returns it with its PV.
func waitClaimBound(t *testing.T, namespace, name string) (*corev1.PersistentVolumeClaim, *corev1.PersistentVolume) {
	t.Helper()
	return waitClaimBoundWithin(t, namespace, name, bindTimeout)
}

func waitClaimBoundWithin(t *testing.T, namespace, name string, timeout time.Duration) (*corev1.PersistentVolumeClaim, *corev1.PersistentVolume) {
	t.Helper()
	var claim *corev1.PersistentVolumeClaim
	var volume *corev1.PersistentVolume
	t.Cleanup(func() {
		if t.Failed() && (volume == nil || volume.Status.Phase != corev1.VolumeBound) {
			logClaimEvents(t, namespace, name)
		}
	})
	poll(t, fmt.Sprintf("claim %s/%s to be Bound", namespace, name), timeout, func(ctx context.Context) (bool, error) {
		var err error
		claim, err = suite.cluster.clientset.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if claim.Status.Phase != corev1.ClaimBound || claim.Spec.VolumeName == "" {
			return false, fmt.Errorf("claim is %s", claim.Status.Phase)
		}
		volume, err = suite.cluster.clientset.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return volume.Status.Phase == corev1.VolumeBound, nil
	})
	return claim, volume
}

// deleteClaim deletes a claim and waits until it is gone.
func deleteClaim(t *testing.T, namespace, name string) {
	t.Helper()
	claims := suite.cluster.clientset.CoreV1().PersistentVolumeClaims(namespace)
	if err := claims.Delete(testContext(t), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting claim %s/%s: %v", namespace, name, err)
	}
	poll(t, fmt.Sprintf("claim %s/%s to be gone", namespace, name), deleteTimeout, func(ctx context.Context) (bool, error) {
		_, err := claims.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// waitVolumeGone waits until the provisioner has deleted the PV (reclaim policy Delete).
func waitVolumeGone(t *testing.T, name string) {
	t.Helper()
	poll(t, fmt.Sprintf("PV %s to be deleted", name), deleteTimeout, func(ctx context.Context) (bool, error) {
		volume, err := suite.cluster.clientset.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return false, fmt.Errorf("PV is %s", volume.Status.Phase)
	})
}

// waitWarningEvent waits for a Warning Event with the given reason on the claim whose message
// contains every one of fragments, and returns it.
func waitWarningEvent(t *testing.T, claim *corev1.PersistentVolumeClaim, reason string, fragments ...string) *corev1.Event {
	t.Helper()
	selector := fields.Set{
		"involvedObject.kind": "PersistentVolumeClaim",
		"involvedObject.name": claim.Name,
		"involvedObject.uid":  string(claim.UID),
		"type":                corev1.EventTypeWarning,
	}.AsSelector().String()
	var found *corev1.Event
	var seen []string
	poll(t, fmt.Sprintf("a Warning Event %s on claim %s/%s mentioning %q", reason, claim.Namespace, claim.Name, fragments), eventTimeout,
		func(ctx context.Context) (bool, error) {
			events, err := suite.cluster.clientset.CoreV1().Events(claim.Namespace).List(ctx, metav1.ListOptions{FieldSelector: selector})
			if err != nil {
				return false, err
			}
			seen = seen[:0]
			for i := range events.Items {
				event := &events.Items[i]
				seen = append(seen, event.Reason+": "+event.Message)
				if event.Reason == reason && containsAll(event.Message, fragments) {
					found = event
					return true, nil
				}
			}
			return false, fmt.Errorf("warnings so far: %q", seen)
		})
	return found
}

func containsAll(text string, fragments []string) bool {
	for _, fragment := range fragments {
		if !strings.Contains(text, fragment) {
			return false
		}
	}
	return true
}

// assertNoVolumeForClaim checks that the claim is still Pending and no PV was made for it.
func assertNoVolumeForClaim(t *testing.T, claim *corev1.PersistentVolumeClaim) {
	t.Helper()
	ctx := testContext(t)
	current, err := suite.cluster.clientset.CoreV1().PersistentVolumeClaims(claim.Namespace).Get(ctx, claim.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting claim %s/%s: %v", claim.Namespace, claim.Name, err)
	}
	if current.Status.Phase != corev1.ClaimPending || current.Spec.VolumeName != "" {
		t.Errorf("claim %s/%s is %s with volume %q; want Pending without a volume", claim.Namespace, claim.Name, current.Status.Phase, current.Spec.VolumeName)
	}
	volumes, err := suite.cluster.clientset.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing PVs: %v", err)
	}
	for _, volume := range volumes.Items {
		if volume.Spec.ClaimRef != nil && volume.Spec.ClaimRef.UID == claim.UID {
			t.Errorf("PV %s was created for claim %s/%s; want none", volume.Name, claim.Namespace, claim.Name)
		}
		if volume.Name == "pvc-"+string(claim.UID) {
			t.Errorf("PV %s exists; want none for claim %s/%s", volume.Name, claim.Namespace, claim.Name)
		}
	}
}

// logClaimEvents logs the Events of a claim, to explain why it did not bind.
func logClaimEvents(t *testing.T, namespace, name string) {
	t.Helper()
	events, err := suite.cluster.clientset.CoreV1().Events(namespace).List(context.Background(), metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.kind": "PersistentVolumeClaim", "involvedObject.name": name}.AsSelector().String(),
	})
	if err != nil {
		t.Logf("listing events of claim %s/%s: %v", namespace, name, err)
		return
	}
	for _, event := range events.Items {
		t.Logf("event on claim %s/%s: %s %s (x%d): %s", namespace, name, event.Type, event.Reason, event.Count, event.Message)
	}
}

// failedProvisionings counts the ProvisioningFailed Warnings recorded for a claim, repeats included.
func failedProvisionings(ctx context.Context, claim *corev1.PersistentVolumeClaim) (int32, error) {
	events, err := suite.cluster.clientset.CoreV1().Events(claim.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.Set{
			"involvedObject.kind": "PersistentVolumeClaim",
			"involvedObject.uid":  string(claim.UID),
			"reason":              warningReason,
		}.AsSelector().String(),
	})
	if err != nil {
		return 0, err
	}
	var count int32
	for _, event := range events.Items {
		count += max(event.Count, 1)
	}
	return count, nil
}
