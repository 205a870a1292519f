package main

import (
	"context"

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

// stripManagedFields is the informers' transform: managedFields (server-side apply bookkeeping)
// are often the largest part of a cached PV or PVC and nothing in the provisioner or the library
// reads them; the library's only write built from a cached object (the PV finalizer patch) is a
// two-way merge patch computed between two copies of that same object, which managedFields do not
// enter. With tens of thousands of PVs and claims cached this is most of the memory saved.
func stripManagedFields(obj any) (any, error) {
	if accessor, ok := obj.(metav1.ObjectMetaAccessor); ok {
		if meta := accessor.GetObjectMeta(); meta.GetManagedFields() != nil {
			meta.SetManagedFields(nil)
		}
	}
	return obj, nil
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
// is almost all informer cache: every PV and PVC of the cluster, long-lived, about 2.7 KiB each
// once decoded (measured: 10,000 bound PV/PVC pairs are ~53 MiB live without managedFields), while
// it allocates little between bursts of claims. With GOGC=100 the heap grows to twice the live
// cache before a collection, which is what its RSS was (155 MiB with 10,000 pairs cached). At 25
// the heap stays within a quarter of the live size above it, for a few more collections during
// bursts, each as cheap as before (marking the same live heap); make bench shows the CPU cost.
// Set GOGC (or GOMEMLIMIT, e.g. from the container's memory limit) to choose otherwise.
const defaultGCPercent = 25

// tuneGC applies defaultGCPercent unless GOGC is set in the environment.
func tuneGC(getenv func(string) string, setGCPercent func(int) int) {
	if getenv("GOGC") == "" {
		setGCPercent(defaultGCPercent)
	}
}
