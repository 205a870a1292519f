// Package resize completes the expansion of claims whose PV this provisioner made, with the
// status protocol of kubernetes-csi/external-resizer: the controller-manager finds no plugin that
// can expand an nfs PV and waits for an external controller, which this is. It calls the API
// server only; NFS has nothing to do (a directory has no size).
package resize

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// Event reasons of expansion, as kubernetes-csi/external-resizer records them.
const (
	ReasonResizing          = "Resizing"
	ReasonResizeSuccessful  = "VolumeResizeSuccessful"
	expansionNotEnforcedMsg = "NFS has no size limit on a directory: the new capacity is a label, not a quota"
)

// Controller completes the expansion of claims whose PV this provisioner made.
// For an in-tree nfs PV the controller-manager finds no plugin that can
// expand it and says it waits for an external controller; this is that
// controller. There is nothing to do on the server (a directory has no
// size), so an expansion is bookkeeping, done with the status protocol of
// kubernetes-csi/external-resizer so that kubectl, dashboards and the
// StatefulSet controller see a finished resize:
//
//  1. the claim's status gets allocatedResources = the request,
//     allocatedResourceStatuses[storage] = ControllerResizeInProgress and a
//     Resizing condition (a Resizing Event);
//  2. the PV's spec.capacity becomes the request;
//  3. the claim's status.capacity becomes the request, its resize status
//     and the Resizing and FileSystemResizePending conditions go (a
//     VolumeResizeSuccessful Event, which says NFS enforces no size).
//
// Each step is skipped when already done, so a restart at any point
// converges. Claims whose PV another provisioner made are ignored.
type Controller struct {
	client   kubernetes.Interface
	claims   corelisters.PersistentVolumeClaimLister
	volumes  corelisters.PersistentVolumeLister
	name     string // the provisioner name PVs of ours carry
	recorder record.EventRecorder
	queue    workqueue.TypedRateLimitingInterface[string]
}

// New watches claims through claimInformer (before it starts).
func New(client kubernetes.Interface, claimInformer, volumeInformer cache.SharedIndexInformer, provisionerName string,
	recorder record.EventRecorder, limiter workqueue.TypedRateLimiter[string]) (*Controller, error) {
	r := &Controller{
		client:   client,
		claims:   corelisters.NewPersistentVolumeClaimLister(claimInformer.GetIndexer()),
		volumes:  corelisters.NewPersistentVolumeLister(volumeInformer.GetIndexer()),
		name:     provisionerName,
		recorder: recorder,
		queue:    workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[string]{Name: "resize"}),
	}
	_, err := claimInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.enqueue,
		UpdateFunc: func(_, obj any) { r.enqueue(obj) },
	})
	if err != nil {
		return nil, fmt.Errorf("watch claims for expansion: %w", err)
	}
	return r, nil
}

func (r *Controller) enqueue(obj any) {
	claim, ok := obj.(*v1.PersistentVolumeClaim)
	if !ok || !needsResize(claim) {
		return
	}
	if key, err := cache.MetaNamespaceKeyFunc(claim); err == nil {
		r.queue.Add(key)
	}
}

// needsResize reports whether a bound claim asks for more than it has.
func needsResize(claim *v1.PersistentVolumeClaim) bool {
	if claim.Spec.VolumeName == "" || claim.Status.Phase != v1.ClaimBound {
		return false
	}
	want, have := claim.Spec.Resources.Requests[v1.ResourceStorage], claim.Status.Capacity[v1.ResourceStorage]
	return want.Cmp(have) > 0
}

// Run works the queue with workers until ctx ends; call it while leading.
func (r *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer r.queue.ShutDown()
	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for r.next(ctx) {
			}
		}, time.Second)
	}
	<-ctx.Done()
}

func (r *Controller) next(ctx context.Context) bool {
	key, quit := r.queue.Get()
	if quit {
		return false
	}
	defer r.queue.Done(key)
	if err := r.sync(ctx, key); err != nil {
		klog.FromContext(ctx).Error(err, "expanding claim; retried", "pvc", key)
		r.queue.AddRateLimited(key)
		return true
	}
	r.queue.Forget(key)
	return true
}

func (r *Controller) sync(ctx context.Context, key string) error {
	claim, pv, err := r.expandable(ctx, key)
	if claim == nil || err != nil {
		return err
	}
	want := claim.Spec.Resources.Requests[v1.ResourceStorage]
	if claim, err = r.markResizing(ctx, claim, pv.Name, want); err != nil {
		return err
	}
	if have := pv.Spec.Capacity[v1.ResourceStorage]; have.Cmp(want) < 0 {
		patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"capacity": map[string]string{string(v1.ResourceStorage): want.String()}}})
		if _, err := r.client.CoreV1().PersistentVolumes().Patch(ctx, pv.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("set the capacity of PV %s to %s: %w", pv.Name, want.String(), err)
		}
	}
	c := claim.DeepCopy()
	setQuantity(&c.Status.Capacity, want)
	setQuantity(&c.Status.AllocatedResources, want)
	delete(c.Status.AllocatedResourceStatuses, v1.ResourceStorage)
	if len(c.Status.AllocatedResourceStatuses) == 0 {
		c.Status.AllocatedResourceStatuses = nil
	}
	c.Status.Conditions = withoutConditions(c.Status.Conditions, v1.PersistentVolumeClaimResizing, v1.PersistentVolumeClaimFileSystemResizePending)
	if _, err := r.client.CoreV1().PersistentVolumeClaims(c.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("mark the claim resized: %w", err)
	}
	r.recorder.Eventf(claim, v1.EventTypeNormal, ReasonResizeSuccessful, "resize volume %s to %s succeeded; %s", pv.Name, want.String(), expansionNotEnforcedMsg)
	klog.FromContext(ctx).V(2).Info("claim expanded", "pvc", klog.KObj(claim), "pv", pv.Name, "capacity", want.String())
	return nil
}

// expandable returns the claim of key (read from the API: the cache holds skeletons of bound
// claims) and its PV when the claim asks for more than it has and the PV is this provisioner's
// and still bound to this very claim; nil otherwise.
func (r *Controller) expandable(ctx context.Context, key string) (*v1.PersistentVolumeClaim, *v1.PersistentVolume, error) {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil, nil, nil
	}
	cached, err := r.claims.PersistentVolumeClaims(namespace).Get(name)
	if apierrors.IsNotFound(err) || err == nil && !needsResize(cached) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	pv, err := r.volumes.Get(cached.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if pv.Annotations[volume.AnnProvisionedBy] != r.name || pv.Spec.NFS == nil {
		return nil, nil, nil // not ours
	}
	claim, err := r.client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("get claim: %w", err)
	}
	if !needsResize(claim) || claim.Spec.VolumeName != pv.Name || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != claim.UID {
		return nil, nil, nil // not (or no longer) this claim's volume
	}
	return claim, pv, nil
}

// markResizing records on the claim's status, as external-resizer does, that the controller is
// resizing it to want (unless it already says so) and tells the user in an Event.
func (r *Controller) markResizing(ctx context.Context, claim *v1.PersistentVolumeClaim, pvName string, want resource.Quantity) (*v1.PersistentVolumeClaim, error) {
	if claim.Status.AllocatedResourceStatuses[v1.ResourceStorage] == v1.PersistentVolumeClaimControllerResizeInProgress &&
		quantityIs(claim.Status.AllocatedResources, want) {
		return claim, nil
	}
	c := claim.DeepCopy()
	setQuantity(&c.Status.AllocatedResources, want)
	if c.Status.AllocatedResourceStatuses == nil {
		c.Status.AllocatedResourceStatuses = map[v1.ResourceName]v1.ClaimResourceStatus{}
	}
	c.Status.AllocatedResourceStatuses[v1.ResourceStorage] = v1.PersistentVolumeClaimControllerResizeInProgress
	c.Status.Conditions = withCondition(c.Status.Conditions, v1.PersistentVolumeClaimCondition{
		Type: v1.PersistentVolumeClaimResizing, Status: v1.ConditionTrue, LastTransitionTime: metav1.Now(),
	})
	updated, err := r.client.CoreV1().PersistentVolumeClaims(c.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("mark the claim resizing: %w", err)
	}
	r.recorder.Eventf(updated, v1.EventTypeNormal, ReasonResizing, "resizing volume %s to %s", pvName, want.String())
	return updated, nil
}

func quantityIs(list v1.ResourceList, q resource.Quantity) bool {
	have, ok := list[v1.ResourceStorage]
	return ok && have.Cmp(q) == 0
}

func setQuantity(list *v1.ResourceList, q resource.Quantity) {
	if *list == nil {
		*list = v1.ResourceList{}
	}
	(*list)[v1.ResourceStorage] = q
}

func withCondition(conds []v1.PersistentVolumeClaimCondition, c v1.PersistentVolumeClaimCondition) []v1.PersistentVolumeClaimCondition {
	return append(withoutConditions(conds, c.Type), c)
}

func withoutConditions(conds []v1.PersistentVolumeClaimCondition, types ...v1.PersistentVolumeClaimConditionType) []v1.PersistentVolumeClaimCondition {
	var out []v1.PersistentVolumeClaimCondition
	for _, c := range conds {
		drop := false
		for _, t := range types {
			drop = drop || c.Type == t
		}
		if !drop {
			out = append(out, c)
		}
	}
	return out
}
