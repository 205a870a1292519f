//go:build e2e

package framework

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/ptr"
)

// ClassOptions describe a StorageClass.
type ClassOptions struct {
	Name           string // fixed name; empty generates one
	Provisioner    string // empty: the Framework's Provisioner
	AllowExpansion bool
	Parameters     map[string]string
	ReclaimPolicy  corev1.PersistentVolumeReclaimPolicy // empty is Delete
	MountOptions   []string
}

// NewClass builds the StorageClass options describe (labelled as a test object).
func NewClass(o ClassOptions) *storagev1.StorageClass {
	class := &storagev1.StorageClass{
		ObjectMeta:   metav1.ObjectMeta{Name: o.Name, Labels: map[string]string{TestLabelKey: TestLabelValue}},
		Provisioner:  o.Provisioner,
		Parameters:   o.Parameters,
		MountOptions: o.MountOptions,
	}
	if o.AllowExpansion {
		class.AllowVolumeExpansion = ptr.To(true)
	}
	if class.Name == "" {
		class.GenerateName = "e2e-"
	}
	if o.ReclaimPolicy != "" {
		class.ReclaimPolicy = ptr.To(o.ReclaimPolicy)
	}
	return class
}

// ClaimOptions describe a PersistentVolumeClaim.
type ClaimOptions struct {
	Name        string
	Class       string
	Size        string // empty: ClaimSize
	Labels      map[string]string
	Annotations map[string]string
	DataSource  *corev1.TypedLocalObjectReference
	// DataSourceRef is what a claim names for a volume populator (any API group).
	DataSourceRef *corev1.TypedObjectReference
}

// NewClaim builds the ReadWriteMany claim options describe.
func NewClaim(namespace string, o ClaimOptions) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: namespace, Labels: o.Labels, Annotations: o.Annotations},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			StorageClassName: ptr.To(o.Class),
			DataSource:       o.DataSource,
			DataSourceRef:    o.DataSourceRef,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(cmp.Or(o.Size, ClaimSize))},
			},
		},
	}
}

// CreateNamespace makes a fresh namespace for one test and deletes it afterwards.
func (f *Framework) CreateNamespace(t *testing.T, prefix string) string {
	t.Helper()
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "e2e-" + prefix + "-",
		Labels:       map[string]string{TestLabelKey: TestLabelValue},
	}}
	return f.createNamespace(t, namespace)
}

// CreateNamedNamespace is CreateNamespace with a fixed name (a tenant choosing its namespace's name).
func (f *Framework) CreateNamedNamespace(t *testing.T, name string) string {
	t.Helper()
	return f.createNamespace(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: map[string]string{TestLabelKey: TestLabelValue},
	}})
}

func (f *Framework) createNamespace(t *testing.T, namespace *corev1.Namespace) string {
	t.Helper()
	created, err := f.Cluster.Clientset.CoreV1().Namespaces().Create(Context(t), namespace, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace %s%s: %v", namespace.Name, namespace.GenerateName, err)
	}
	t.Cleanup(func() {
		err := f.Cluster.Clientset.CoreV1().Namespaces().Delete(context.Background(), created.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", created.Name, err)
		}
	})
	return created.Name
}

// CreateClass makes a StorageClass and deletes it afterwards.
func (f *Framework) CreateClass(t *testing.T, o ClassOptions) *storagev1.StorageClass {
	t.Helper()
	if o.Provisioner == "" {
		o.Provisioner = f.Provisioner
		if f.BeforeClass != nil {
			f.BeforeClass(t)
		}
	}
	if v := f.Env.ClassNFSVersion; v != "" && o.Parameters["nfsVersion"] == "" && !namesVersion(o.MountOptions) {
		o.Parameters = maps.Clone(o.Parameters)
		if o.Parameters == nil {
			o.Parameters = map[string]string{}
		}
		o.Parameters["nfsVersion"] = v
	}
	class := NewClass(o)
	created, err := f.Cluster.Clientset.StorageV1().StorageClasses().Create(Context(t), class, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating StorageClass %s%s: %v", class.Name, class.GenerateName, err)
	}
	t.Cleanup(func() {
		err := f.Cluster.Clientset.StorageV1().StorageClasses().Delete(context.Background(), created.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting StorageClass %s: %v", created.Name, err)
		}
	})
	return created
}

// namesVersion reports whether mount options name an NFS version (nfsvers=, vers=).
func namesVersion(mountOptions []string) bool {
	for _, o := range mountOptions {
		for _, opt := range strings.Split(o, ",") {
			if strings.HasPrefix(opt, "nfsvers=") || strings.HasPrefix(opt, "vers=") {
				return true
			}
		}
	}
	return false
}

// CreateClaim makes a claim. Its deletion is the test's business (that is what the delete cases
// test); the namespace's deletion removes what is left.
func (f *Framework) CreateClaim(t *testing.T, namespace string, o ClaimOptions) *corev1.PersistentVolumeClaim {
	t.Helper()
	created, err := f.Cluster.Clientset.CoreV1().PersistentVolumeClaims(namespace).Create(Context(t), NewClaim(namespace, o), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating claim %s/%s: %v", namespace, o.Name, err)
	}
	return created
}

// WaitClaimBound waits until the claim is Bound and returns it with its PV.
func (f *Framework) WaitClaimBound(t *testing.T, namespace, name string) (*corev1.PersistentVolumeClaim, *corev1.PersistentVolume) {
	t.Helper()
	return f.WaitClaimBoundWithin(t, namespace, name, BindTimeout)
}

// WaitClaimBoundWithin is WaitClaimBound with a deadline of its own; on failure it logs the
// claim's Events.
func (f *Framework) WaitClaimBoundWithin(t *testing.T, namespace, name string, timeout time.Duration) (*corev1.PersistentVolumeClaim, *corev1.PersistentVolume) {
	t.Helper()
	var claim *corev1.PersistentVolumeClaim
	var volume *corev1.PersistentVolume
	t.Cleanup(func() {
		if t.Failed() && (volume == nil || volume.Status.Phase != corev1.VolumeBound) {
			f.LogClaimEvents(t, namespace, name)
		}
	})
	Poll(t, fmt.Sprintf("claim %s/%s to be Bound", namespace, name), timeout, func(ctx context.Context) (bool, error) {
		var err error
		claim, err = f.Cluster.Clientset.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if claim.Status.Phase != corev1.ClaimBound || claim.Spec.VolumeName == "" {
			return false, fmt.Errorf("claim is %s", claim.Status.Phase)
		}
		volume, err = f.Cluster.Clientset.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return volume.Status.Phase == corev1.VolumeBound, nil
	})
	return claim, volume
}

// DeleteClaim deletes a claim and waits until it is gone.
func (f *Framework) DeleteClaim(t *testing.T, namespace, name string) {
	t.Helper()
	claims := f.Cluster.Clientset.CoreV1().PersistentVolumeClaims(namespace)
	if err := claims.Delete(Context(t), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting claim %s/%s: %v", namespace, name, err)
	}
	Poll(t, fmt.Sprintf("claim %s/%s to be gone", namespace, name), DeleteTimeout, func(ctx context.Context) (bool, error) {
		_, err := claims.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// WaitVolumeGone waits until the provisioner has deleted the PV (reclaim policy Delete).
func (f *Framework) WaitVolumeGone(t *testing.T, name string) {
	t.Helper()
	Poll(t, fmt.Sprintf("PV %s to be deleted", name), DeleteTimeout, func(ctx context.Context) (bool, error) {
		volume, err := f.Cluster.Clientset.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return false, fmt.Errorf("PV is %s", volume.Status.Phase)
	})
}

// WaitEvent waits for an Event of the given type and reason on the claim whose message contains
// every one of fragments, and returns it.
func (f *Framework) WaitEvent(t *testing.T, claim *corev1.PersistentVolumeClaim, eventType, reason string, fragments ...string) *corev1.Event {
	t.Helper()
	selector := fields.Set{
		"involvedObject.kind": "PersistentVolumeClaim",
		"involvedObject.name": claim.Name,
		"involvedObject.uid":  string(claim.UID),
		"type":                eventType,
	}.AsSelector().String()
	var found *corev1.Event
	var seen []string
	Poll(t, fmt.Sprintf("a %s Event %s on claim %s/%s mentioning %q", eventType, reason, claim.Namespace, claim.Name, fragments), EventTimeout,
		func(ctx context.Context) (bool, error) {
			events, err := f.Cluster.Clientset.CoreV1().Events(claim.Namespace).List(ctx, metav1.ListOptions{FieldSelector: selector})
			if err != nil {
				return false, err
			}
			seen = seen[:0]
			for i := range events.Items {
				event := &events.Items[i]
				seen = append(seen, event.Reason+": "+event.Message)
				if event.Reason == reason && ContainsAll(event.Message, fragments) {
					found = event
					return true, nil
				}
			}
			return false, fmt.Errorf("%s Events so far: %q", eventType, seen)
		})
	return found
}

// WaitWarningEvent is WaitEvent for a Warning.
func (f *Framework) WaitWarningEvent(t *testing.T, claim *corev1.PersistentVolumeClaim, reason string, fragments ...string) *corev1.Event {
	t.Helper()
	return f.WaitEvent(t, claim, corev1.EventTypeWarning, reason, fragments...)
}

// ContainsAll tells whether text contains every fragment.
func ContainsAll(text string, fragments []string) bool {
	for _, fragment := range fragments {
		if !strings.Contains(text, fragment) {
			return false
		}
	}
	return true
}

// AssertNoVolumeForClaim checks that the claim is still Pending and no PV was made for it.
func (f *Framework) AssertNoVolumeForClaim(t *testing.T, claim *corev1.PersistentVolumeClaim) {
	t.Helper()
	ctx := Context(t)
	current, err := f.Cluster.Clientset.CoreV1().PersistentVolumeClaims(claim.Namespace).Get(ctx, claim.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting claim %s/%s: %v", claim.Namespace, claim.Name, err)
	}
	if current.Status.Phase != corev1.ClaimPending || current.Spec.VolumeName != "" {
		t.Errorf("claim %s/%s is %s with volume %q; want Pending without a volume", claim.Namespace, claim.Name, current.Status.Phase, current.Spec.VolumeName)
	}
	volumes, err := f.Cluster.Clientset.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
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

// LogClaimEvents logs the Events of a claim, to explain why it did not bind.
func (f *Framework) LogClaimEvents(t *testing.T, namespace, name string) {
	t.Helper()
	events, err := f.Cluster.Clientset.CoreV1().Events(namespace).List(context.Background(), metav1.ListOptions{
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

// FailedProvisionings counts the ProvisioningFailed Warnings recorded for a claim, repeats included.
func (f *Framework) FailedProvisionings(ctx context.Context, claim *corev1.PersistentVolumeClaim) (int32, error) {
	events, err := f.Cluster.Clientset.CoreV1().Events(claim.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.Set{
			"involvedObject.kind": "PersistentVolumeClaim",
			"involvedObject.uid":  string(claim.UID),
			"reason":              FailureReason,
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
