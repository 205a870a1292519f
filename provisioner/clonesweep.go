package provisioner

import (
	"context"
	"errors"
	"path"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// SweepClones removes, every interval, what copies left behind when a provisioner stopped in the
// middle of them (a clone whose claim was deleted meanwhile is never started again): staging
// directories no running copy writes, and the protection finalizer of sources no pending claim
// clones any more. Leader only.
func (p *Provisioner) SweepClones(ctx context.Context, interval time.Duration) {
	if interval <= 0 || p.cfg.Claims == nil {
		return
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		p.sweepClones(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (p *Provisioner) sweepClones(ctx context.Context) {
	logger := klog.FromContext(ctx)
	if err := p.releaseSources(ctx); err != nil {
		logger.Error(err, "clone sweep: release sources")
	}
	if err := p.forgetEndedClones(ctx); err != nil {
		logger.Error(err, "clone sweep: ended clones")
	}
	for _, target := range p.exportsInUse() {
		if err := p.sweepStaging(ctx, target[0], target[1]); err != nil {
			logger.V(2).Info("clone sweep: staging directories not swept", "server", target[0], "share", target[1], "err", err)
		}
	}
}

// releaseSources removes FinalizerCloneSource from claims that no running copy reads and no
// pending claim (whose copy starts again) names as its data source.
func (p *Provisioner) releaseSources(ctx context.Context) error {
	claims, err := p.cfg.Claims.Cached()
	if err != nil {
		return err
	}
	wanted := map[string]bool{}
	for _, c := range claims {
		// Only a claim of the source's own namespace: another's is refused, never copies it.
		if _, kind, name, namespace := dataSourceOf(c); kind == "PersistentVolumeClaim" && namespace == c.Namespace && c.Spec.VolumeName == "" && c.DeletionTimestamp == nil {
			wanted[namespace+"/"+name] = true
		}
	}
	var failed error
	for _, c := range claims {
		protected := false
		for _, f := range c.Finalizers {
			protected = protected || f == FinalizerCloneSource
		}
		if !protected || wanted[c.Namespace+"/"+c.Name] {
			continue
		}
		// A copy started since the list above re-checks under the lock.
		err := p.releaseSource(ctx, c.Namespace, c.Name, nil, "")
		if err != nil {
			failed = errors.Join(failed, err) // the others are released all the same
			continue
		}
		klog.FromContext(ctx).Info("released a clone source no copy needs", "pvc", klog.KObj(c))
	}
	return failed
}

// forgetEndedClones drops the ended jobs of claims gone since (their copies, complete or not,
// are in staging, which sweepStaging clears).
func (p *Provisioner) forgetEndedClones(context.Context) error {
	claims, err := p.cfg.Claims.Cached()
	if err != nil {
		return err
	}
	live := map[types.UID]bool{}
	for _, c := range claims {
		live[c.UID] = c.DeletionTimestamp == nil
	}
	p.clones.mu.Lock()
	defer p.clones.mu.Unlock()
	for uid, j := range p.clones.jobs {
		if !j.running() && !live[uid] {
			delete(p.clones.jobs, uid)
		}
	}
	return nil
}

// sweepStaging removes this install's staging directories of one export that no running copy
// writes and no pending claim waits for (a complete copy, <pv>.<attempt>.done, of the claim of
// PV pv-name "pvc-<claim UID>").
func (p *Provisioner) sweepStaging(ctx context.Context, server, share string) error {
	root, err := p.stagingRoot(ctx)
	if err != nil {
		return err
	}
	claims, err := p.cfg.Claims.Cached()
	if err != nil {
		return err
	}
	waiting := map[string]bool{}
	for _, c := range claims {
		if c.Spec.VolumeName == "" && c.DeletionTimestamp == nil {
			waiting["pvc-"+string(c.UID)] = true
		}
	}
	return p.onExport(ctx, server, share, p.cfg.RemoveTimeout, func(ctx context.Context, fsys export.FS) error {
		var leftovers []string
		err := listStaging(ctx, fsys, root, func(name string) error {
			pv, _, _ := strings.Cut(name, ".")
			switch {
			case p.clones.stagedBy(name):
			case strings.HasSuffix(name, doneSuffix) && waiting[pv]:
			default:
				leftovers = append(leftovers, name)
			}
			return nil
		})
		for _, name := range leftovers {
			if p.clones.stagedBy(name) {
				continue
			}
			if users, uerr := p.volumeUsers(server, path.Join(share, root, name), ""); uerr != nil || len(users) > 0 {
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
