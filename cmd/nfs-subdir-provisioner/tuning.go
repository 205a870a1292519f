package main

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
)

// Performance settings of the Kubernetes side, measured with make bench (README "Performance").

// useProtobuf makes the clients speak protobuf instead of JSON. Every object the provisioner
// reads or writes (PVs, PVCs, StorageClasses, Events, Leases) is a built-in type, all of which
// the API server serves as protobuf. Decoding the informers' watch events is most of the
// provisioner's CPU, and protobuf costs a fraction of JSON to decode; the API server already
// encodes protobuf for the controller-manager, so it is spared a JSON encoding of each watch
// event too. JSON stays acceptable for anything served only as JSON.
func useProtobuf(c *rest.Config) {
	c.ContentType = runtime.ContentTypeProtobuf
	c.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
}

// cacheTransform is the informers' transform; it keeps in the caches only what is read from them.
//
// managedFields (server-side apply bookkeeping) go from every object: they are often the largest
// part of a cached PV or PVC and nothing in the provisioner or the library reads them; the
// library's only write built from a cached object (the PV finalizer patch) is a two-way merge
// patch computed between two copies of that same object, which managedFields do not enter.
//
// A claim with spec.volumeName set is bound (or pre-bound) for good: the field is set once and
// never cleared, and the library's first test in deciding to provision is that it is empty. Such
// a claim is never passed to Provision, so its labels, annotations, requests and status are
// never read; the cache keeps what the library still uses: its identity (name, namespace, UID,
// for the work queue and Events), its class (spec.storageClassName or the beta annotation, read
// before that test) and volumeName. In a cluster most claims are bound, so this is most of the
// claim cache (make bench, 10,000 PV/PVC pairs cached: RSS 124 MiB before, 97 MiB after).
func cacheTransform(obj any) (any, error) {
	if claim, ok := obj.(*v1.PersistentVolumeClaim); ok && claim.Spec.VolumeName != "" {
		return boundClaimSkeleton(claim), nil
	}
	if accessor, ok := obj.(metav1.ObjectMetaAccessor); ok {
		if meta := accessor.GetObjectMeta(); meta.GetManagedFields() != nil {
			meta.SetManagedFields(nil)
		}
	}
	return obj, nil
}

// betaStorageClassAnnotation is the pre-1.6 way of naming a claim's class, which the library
// still honours.
const betaStorageClassAnnotation = "volume.beta.kubernetes.io/storage-class"

func boundClaimSkeleton(claim *v1.PersistentVolumeClaim) *v1.PersistentVolumeClaim {
	skeleton := &v1.PersistentVolumeClaim{
		TypeMeta: claim.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:              claim.Name,
			Namespace:         claim.Namespace,
			UID:               claim.UID,
			ResourceVersion:   claim.ResourceVersion,
			Generation:        claim.Generation,
			CreationTimestamp: claim.CreationTimestamp,
			DeletionTimestamp: claim.DeletionTimestamp,
			Finalizers:        claim.Finalizers, // the clone sweep looks for its own
		},
		Spec: v1.PersistentVolumeClaimSpec{
			VolumeName:       claim.Spec.VolumeName,
			StorageClassName: claim.Spec.StorageClassName,
		},
		Status: v1.PersistentVolumeClaimStatus{Phase: claim.Status.Phase},
	}
	// What the Resizer compares: the requested and the current size.
	if q, ok := claim.Spec.Resources.Requests[v1.ResourceStorage]; ok {
		skeleton.Spec.Resources.Requests = v1.ResourceList{v1.ResourceStorage: q}
	}
	if q, ok := claim.Status.Capacity[v1.ResourceStorage]; ok {
		skeleton.Status.Capacity = v1.ResourceList{v1.ResourceStorage: q}
	}
	if class, ok := claim.Annotations[betaStorageClassAnnotation]; ok {
		skeleton.Annotations = map[string]string{betaStorageClassAnnotation: class}
	}
	return skeleton
}

// reasonProvisioning is the Normal Event the library records on a claim when it starts an
// attempt, just before calling Provision.
const reasonProvisioning = "Provisioning"

// libraryClient is the clientset handed to the library's controller. It differs from the real
// one in one respect: the library's "Provisioning" Events are not written. Every attempt ends,
// milliseconds later, in a ProvisioningSucceeded or ProvisioningFailed Event that the library
// records as well, so the claim's history keeps one Event per attempt and loses nothing a user
// acts on, while each claim costs one API write less (a third of the provisioner's writes for a
// claim: Event, PV, Event). All other calls and Events go through unchanged.
type libraryClient struct{ kubernetes.Interface }

func (c libraryClient) CoreV1() typedcorev1.CoreV1Interface {
	return libraryCoreV1{c.Interface.CoreV1()}
}

type libraryCoreV1 struct{ typedcorev1.CoreV1Interface }

func (c libraryCoreV1) Events(namespace string) typedcorev1.EventInterface {
	return withoutProvisioningEvents{c.CoreV1Interface.Events(namespace)}
}

// withoutProvisioningEvents drops the creation of "Provisioning" Events. The library's event sink
// creates an Event, or patches it when the same Event repeats; a patch of an Event that was never
// created fails with NotFound, upon which the sink creates it, which is dropped again.
type withoutProvisioningEvents struct{ typedcorev1.EventInterface }

func dropped(event *v1.Event) bool {
	return event.Type == v1.EventTypeNormal && event.Reason == reasonProvisioning
}

func (e withoutProvisioningEvents) CreateWithEventNamespace(event *v1.Event) (*v1.Event, error) {
	if dropped(event) {
		return event, nil
	}
	return e.EventInterface.CreateWithEventNamespaceWithContext(context.Background(), event)
}

func (e withoutProvisioningEvents) CreateWithEventNamespaceWithContext(ctx context.Context, event *v1.Event) (*v1.Event, error) {
	if dropped(event) {
		return event, nil
	}
	return e.EventInterface.CreateWithEventNamespaceWithContext(ctx, event)
}

// defaultGCPercent replaces Go's default GOGC of 100 when GOGC is not set. The provisioner's heap
// is almost all informer cache: every PV and PVC of the cluster, long-lived, while it allocates
// little between bursts of claims. With GOGC=100 the heap grows to twice the live cache before a
// collection, and that was its RSS (make bench, 10,000 PV/PVC pairs cached: 155 MiB, 126 MiB of
// it heap). At 25 the heap stays within a quarter of the live size above it (124 MiB RSS in the
// same run), for a few more collections during bursts, each as cheap as before (marking the same
// live heap); make bench reports the CPU. Set GOGC (or GOMEMLIMIT, e.g. from the container's
// memory limit) to choose otherwise.
const defaultGCPercent = 25

// tuneGC applies defaultGCPercent unless GOGC is set in the environment.
func tuneGC(getenv func(string) string, setGCPercent func(int) int) {
	if getenv("GOGC") == "" {
		setGCPercent(defaultGCPercent)
	}
}

// cloneSweepInterval is how often the leader looks for what interrupted clones left behind.
const cloneSweepInterval = time.Minute
