package clone

import (
	"context"
	"errors"
	"path"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/util"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/pathpattern"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// Sweep removes, every interval, what copies left behind when a provisioner stopped in the
// middle of them (a clone whose claim was deleted meanwhile is never started again): staging
// directories no running copy writes, and the protection finalizer of sources no clone to come
// needs. Leader only.
func (c *Cloner) Sweep(ctx context.Context, interval time.Duration) {
	if interval <= 0 || c.cfg.Claims == nil {
		return
	}
	wait.UntilWithContext(ctx, c.SweepOnce, interval)
}

// SweepOnce is one sweep.
func (c *Cloner) SweepOnce(ctx context.Context) {
	logger := klog.FromContext(ctx)
	if err := c.releaseSources(ctx); err != nil {
		logger.Error(err, "clone sweep: release sources")
	}
	if err := c.forgetEndedClones(ctx); err != nil {
		logger.Error(err, "clone sweep: ended clones")
	}
	for _, e := range c.cfg.Locator.InUse() {
		if err := c.sweepStaging(ctx, e.Server, e.Share); err != nil {
			logger.V(2).Info("clone sweep: staging directories not swept", "server", e.Server, "share", e.Share, "err", err)
		}
	}
}

// clonesToCome names ("namespace/name") the sources that a pending claim other than except may
// still copy: a claim of one of this provisioner's classes, of the source's own namespace, asking
// for at least the source's size, whose class gives it a directory of its own. A claim refused for
// good (too small, another provisioner's, a class a clone cannot use) holds no source: the copy
// that may come one day protects its source again before it starts.
func (c *Cloner) clonesToCome(claims []*v1.PersistentVolumeClaim, except types.UID) map[string]bool {
	byName := make(map[string]*v1.PersistentVolumeClaim, len(claims))
	for _, cl := range claims {
		byName[cl.Namespace+"/"+cl.Name] = cl
	}
	out := map[string]bool{}
	for _, cl := range claims {
		_, kind, name, namespace := dataSourceOf(cl)
		if cl.UID == except || kind != "PersistentVolumeClaim" || namespace != cl.Namespace || cl.Spec.VolumeName != "" || cl.DeletionTimestamp != nil {
			continue
		}
		key := namespace + "/" + name
		if src := byName[key]; src != nil && c.mayCopy(cl, src) {
			out[key] = true
		}
	}
	return out
}

// mayCopy reports whether claim, pending, may still become a copy of src.
func (c *Cloner) mayCopy(claim, src *v1.PersistentVolumeClaim) bool {
	sc := c.cfg.Locator.Class(util.GetPersistentVolumeClaimClass(claim)) // as the library reads it
	if sc == nil || sc.Provisioner != c.cfg.Name {
		return false
	}
	opts, err := class.Parse(sc.Parameters)
	if err != nil || !pathpattern.ClaimOwn(opts.PathPattern) {
		return false
	}
	have, known := src.Status.Capacity[v1.ResourceStorage]
	want := claim.Spec.Resources.Requests[v1.ResourceStorage]
	return !known || have.Cmp(want) <= 0
}

// releaseSources removes FinalizerCloneSource from claims that no running copy reads and no clone
// to come needs.
func (c *Cloner) releaseSources(ctx context.Context) error {
	claims, err := c.cfg.Claims.Cached()
	if err != nil {
		return err
	}
	wanted := c.clonesToCome(claims, "")
	var failed error
	for _, cl := range claims {
		if !slices.Contains(cl.Finalizers, FinalizerCloneSource) || wanted[cl.Namespace+"/"+cl.Name] {
			continue
		}
		// A copy started since the list above re-checks under the lock.
		if err := c.releaseSource(ctx, cl.Namespace, cl.Name, nil, ""); err != nil {
			failed = errors.Join(failed, err) // the others are released all the same
			continue
		}
		klog.FromContext(ctx).Info("released a clone source no copy needs", "pvc", klog.KObj(cl))
	}
	return failed
}

// forgetEndedClones drops the ended jobs of claims gone since (their copies, complete or not,
// are in staging, which sweepStaging clears).
func (c *Cloner) forgetEndedClones(context.Context) error {
	claims, err := c.cfg.Claims.Cached()
	if err != nil {
		return err
	}
	live := map[types.UID]bool{}
	for _, cl := range claims {
		live[cl.UID] = cl.DeletionTimestamp == nil
	}
	c.jobs.mu.Lock()
	defer c.jobs.mu.Unlock()
	for uid, j := range c.jobs.jobs {
		if !j.running() && !live[uid] {
			delete(c.jobs.jobs, uid)
			c.jobs.retries.Forget(uid)
		}
	}
	return nil
}

// sweepStaging removes this install's staging directories of one export that no running copy
// writes and no pending claim waits for (a complete copy, <pv>.<attempt>.done, of the claim of
// PV pv-name "pvc-<claim UID>").
func (c *Cloner) sweepStaging(ctx context.Context, server, share string) error {
	root, err := c.stagingRoot(ctx)
	if err != nil {
		return err
	}
	claims, err := c.cfg.Claims.Cached()
	if err != nil {
		return err
	}
	waiting := map[string]bool{}
	for _, cl := range claims {
		if cl.Spec.VolumeName == "" && cl.DeletionTimestamp == nil {
			waiting["pvc-"+string(cl.UID)] = true
		}
	}
	return c.cfg.Gate.Do(ctx, server, share, c.cfg.RemoveTimeout, func(ctx context.Context, fsys export.FS) error {
		var leftovers []string
		err := listStaging(ctx, fsys, root, func(name string) error {
			pv, _, _ := strings.Cut(name, ".")
			switch {
			case c.jobs.stagedBy(name):
			case strings.HasSuffix(name, doneSuffix) && waiting[pv]:
			default:
				leftovers = append(leftovers, name)
			}
			return nil
		})
		for _, name := range leftovers {
			if c.jobs.stagedBy(name) {
				continue
			}
			if users, uerr := volume.Users(c.cfg.Volumes, server, path.Join(share, root, name), ""); uerr != nil || len(users) > 0 {
				continue // never a directory a PV uses (none should be placed here)
			}
			klog.FromContext(ctx).Info("removing a clone's leftover staging directory", "server", server, "share", share, "dir", path.Join(root, name))
			if rerr := fsys.RemoveAll(ctx, path.Join(root, name), nil); rerr != nil {
				return errors.Join(err, rerr)
			}
		}
		return err
	})
}
