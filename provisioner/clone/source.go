package clone

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/util/retry"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// FinalizerCloneSource is on a claim while a clone copies it, so that it is not deleted mid-copy;
// it goes when the copy ends (as external-provisioner's cloning-protection finalizer does).
const FinalizerCloneSource = "nfs-subdir-provisioner.io/clone-source-protection"

// AnnCloneStatus on a claim being cloned into is set when its copy ends ("copied" or "failed"):
// the update brings the claim back to the controller, which then finishes it.
const AnnCloneStatus = "nfs-subdir-provisioner.io/clone"

// Claims is what cloning needs of the API server.
type Claims interface {
	// Claim and Volume read the current objects (not a cache).
	Claim(ctx context.Context, namespace, name string) (*v1.PersistentVolumeClaim, error)
	Volume(ctx context.Context, name string) (*v1.PersistentVolume, error)
	// Protect adds FinalizerCloneSource to the claim with that UID; Unprotect removes it (a claim
	// gone is not an error for either).
	Protect(ctx context.Context, namespace, name string, uid types.UID) error
	Unprotect(ctx context.Context, namespace, name string) error
	// Annotate sets one annotation on the claim with that UID.
	Annotate(ctx context.Context, namespace, name string, uid types.UID, key, value string) error
	// Cached lists the claims of the informer's cache (bound ones as skeletons with finalizers).
	Cached() ([]*v1.PersistentVolumeClaim, error)
}

// KubeClaims implements Claims with the API client and the claim informer's lister.
type KubeClaims struct {
	Client kubernetes.Interface
	Lister corelisters.PersistentVolumeClaimLister
}

func (k KubeClaims) Claim(ctx context.Context, namespace, name string) (*v1.PersistentVolumeClaim, error) {
	return k.Client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (k KubeClaims) Volume(ctx context.Context, name string) (*v1.PersistentVolume, error) {
	return k.Client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
}

func (k KubeClaims) Cached() ([]*v1.PersistentVolumeClaim, error) {
	return k.Lister.List(labels.Everything())
}

// errClaimGone is a claim that is not there (any more), or is another of that name.
var errClaimGone = errors.New("the claim is gone")

// change applies edit to the current claim and updates it, again on a conflict; a claim gone,
// or another claim of that name (uid set and different), is errClaimGone.
func (k KubeClaims) change(ctx context.Context, namespace, name string, uid types.UID, edit func(*v1.PersistentVolumeClaim) bool) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		claim, err := k.Client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || err == nil && uid != "" && claim.UID != uid {
			return errClaimGone
		}
		if err != nil {
			return err
		}
		if !edit(claim) {
			return nil
		}
		_, err = k.Client.CoreV1().PersistentVolumeClaims(namespace).Update(ctx, claim, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return errClaimGone
		}
		return err
	})
}

// Protect fails when the claim is gone or is another one: a source deleted since it was read is
// not copied unprotected.
func (k KubeClaims) Protect(ctx context.Context, namespace, name string, uid types.UID) error {
	err := k.change(ctx, namespace, name, uid, func(c *v1.PersistentVolumeClaim) bool {
		if c.DeletionTimestamp != nil || slices.Contains(c.Finalizers, FinalizerCloneSource) {
			return false
		}
		c.Finalizers = append(c.Finalizers, FinalizerCloneSource)
		return true
	})
	if err == nil {
		claim, gerr := k.Client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case gerr != nil:
			err = gerr
		case claim.UID != uid || !slices.Contains(claim.Finalizers, FinalizerCloneSource):
			err = fmt.Errorf("%w: it is being deleted", errClaimGone)
		}
	}
	return err
}

func (k KubeClaims) Unprotect(ctx context.Context, namespace, name string) error {
	err := k.change(ctx, namespace, name, "", func(c *v1.PersistentVolumeClaim) bool {
		n := len(c.Finalizers)
		c.Finalizers = slices.DeleteFunc(c.Finalizers, func(f string) bool { return f == FinalizerCloneSource })
		return len(c.Finalizers) != n
	})
	if errors.Is(err, errClaimGone) {
		return nil
	}
	return err
}

func (k KubeClaims) Annotate(ctx context.Context, namespace, name string, uid types.UID, key, value string) error {
	err := k.change(ctx, namespace, name, uid, func(c *v1.PersistentVolumeClaim) bool {
		if c.Annotations[key] == value {
			return false
		}
		metav1.SetMetaDataAnnotation(&c.ObjectMeta, key, value)
		return true
	})
	if errors.Is(err, errClaimGone) {
		return nil
	}
	return err
}

// cloneSource is the claim a clone copies, and where its directory is.
type cloneSource struct {
	claim *v1.PersistentVolumeClaim
	pv    *v1.PersistentVolume
	loc   volume.Location
}

func (s *cloneSource) String() string {
	return fmt.Sprintf("claim %s/%s (%s)", s.claim.Namespace, s.claim.Name, s.loc)
}

// dataSourceOf is the kind, name and namespace a claim asks to be filled from ("" for none).
func dataSourceOf(claim *v1.PersistentVolumeClaim) (group, kind, name, namespace string) {
	if ds := claim.Spec.DataSourceRef; ds != nil {
		if ds.APIGroup != nil {
			group = *ds.APIGroup
		}
		namespace = claim.Namespace
		if ds.Namespace != nil && *ds.Namespace != "" {
			namespace = *ds.Namespace
		}
		return group, ds.Kind, ds.Name, namespace
	}
	if ds := claim.Spec.DataSource; ds != nil {
		if ds.APIGroup != nil {
			group = *ds.APIGroup
		}
		return group, ds.Kind, ds.Name, claim.Namespace
	}
	return "", "", "", ""
}

// CheckDataSource refuses a data source that is not a claim: a directory provisioner can fill a
// volume only by copying another of its own; any other source would leave the claim believing
// it has a copy of something while it has an empty directory.
func CheckDataSource(claim *v1.PersistentVolumeClaim) error {
	group, kind, name, _ := dataSourceOf(claim)
	switch {
	case kind == "":
		return nil
	case kind == "VolumeSnapshot":
		return fmt.Errorf("the claim's data source is VolumeSnapshot %s: snapshots need a CSI driver, which an NFS directory provisioner is not; clone from a PersistentVolumeClaim instead, or restore the snapshot with its CSI driver", name)
	case kind == "PersistentVolumeClaim" && group == "":
		return nil
	}
	return fmt.Errorf("the claim's data source is a %s (%s), which this provisioner cannot fill; use a PersistentVolumeClaim of this provisioner as the data source, or remove it", kind, name)
}

// Wanted reports whether the claim's data source is a claim: it is to be a clone.
func Wanted(claim *v1.PersistentVolumeClaim) bool {
	_, kind, _, _ := dataSourceOf(claim)
	return kind == "PersistentVolumeClaim"
}

// sourceOf finds the claim a claim is cloned from (nil for none). Refusals (*volume.Refusal) say
// what to change; other errors are retried (the source not bound yet, the API server away).
func (c *Cloner) sourceOf(ctx context.Context, claim *v1.PersistentVolumeClaim) (*cloneSource, error) {
	_, kind, name, namespace := dataSourceOf(claim)
	if kind != "PersistentVolumeClaim" {
		return nil, nil
	}
	refuse := func(format string, args ...any) error {
		return volume.Refuse("cannot clone claim %s: %s", name, fmt.Sprintf(format, args...))
	}
	switch {
	case namespace != claim.Namespace:
		return nil, refuse("it is in namespace %s; a claim is cloned only from a claim of its own namespace", namespace)
	case c.cfg.Claims == nil:
		return nil, refuse("this provisioner runs without access to claims")
	}
	src, err := c.cfg.Claims.Claim(ctx, namespace, name)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("cannot clone claim %s: it does not exist (yet); create it, or remove the data source", name)
	}
	if err != nil {
		return nil, fmt.Errorf("read the source claim %s: %w", name, err)
	}
	if src.DeletionTimestamp != nil {
		return nil, refuse("it is being deleted")
	}
	if src.Spec.VolumeName == "" || src.Status.Phase != v1.ClaimBound {
		return nil, fmt.Errorf("cannot clone claim %s yet: it is not bound to a volume; the clone starts once it is", name)
	}
	pv, err := c.cfg.Claims.Volume(ctx, src.Spec.VolumeName)
	if err != nil {
		return nil, fmt.Errorf("read the source claim's volume %s: %w", src.Spec.VolumeName, err)
	}
	if pv.Annotations[volume.AnnProvisionedBy] != c.cfg.Name || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != src.UID {
		return nil, refuse("its volume %s was not made by this provisioner (%s) for it; clone only claims of a StorageClass of provisioner %s", pv.Name, c.cfg.Name, c.cfg.Name)
	}
	loc, err := c.cfg.Locator.Locate(pv)
	if err != nil {
		return nil, refuse("where its volume %s is cannot be read: %v", pv.Name, err)
	}
	if slices.Contains(strings.Split(loc.Dir, "/"), volume.StagingDir) {
		return nil, refuse("its volume %s lies in %s, where copies in progress are", pv.Name, volume.StagingDir)
	}
	want := claim.Spec.Resources.Requests[v1.ResourceStorage]
	if have, ok := pv.Spec.Capacity[v1.ResourceStorage]; ok && have.Cmp(want) > 0 {
		return nil, refuse("it is %s, larger than the %s this claim requests; request at least %s", have.String(), want.String(), have.String())
	}
	return &cloneSource{claim: src, pv: pv, loc: loc}, nil
}
