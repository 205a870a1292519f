package provisioner

import (
	"context"
	"errors"
	"path"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/nfs-subdir/provisioner/internal/export"
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
		if _, kind, name, namespace := dataSourceOf(c); kind == "PersistentVolumeClaim" && c.Spec.VolumeName == "" && c.DeletionTimestamp == nil {
			wanted[namespace+"/"+name] = true
		}
	}
	var failed error
	for _, c := range claims {
		protected := false
		for _, f := range c.Finalizers {
			protected = protected || f == FinalizerCloneSource
		}
		if !protected || wanted[c.Namespace+"/"+c.Name] || p.clones.sourcing(c.Namespace, c.Name, nil) {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, apiTimeout)
		err := p.cfg.Claims.Unprotect(ctx, c.Namespace, c.Name)
		cancel()
		if err != nil {
			failed = errors.Join(failed, err) // the others are released all the same
			continue
		}
		klog.FromContext(ctx).Info("released a clone source no copy needs", "pvc", klog.KObj(c))
	}
	return failed
}

// forgetEndedClones drops the ended jobs of claims gone since; a copy renamed into place for a
// claim deleted before its PV was made (no PV uses it) is removed.
func (p *Provisioner) forgetEndedClones(ctx context.Context) error {
	claims, err := p.cfg.Claims.Cached()
	if err != nil {
		return err
	}
	live := map[types.UID]bool{}
	for _, c := range claims {
		live[c.UID] = c.DeletionTimestamp == nil
	}
	p.clones.mu.Lock()
	var ended []*cloneJob
	for uid, j := range p.clones.jobs {
		if !j.running() && !live[uid] {
			ended = append(ended, j)
		}
	}
	p.clones.mu.Unlock()
	var failed error
	for _, j := range ended {
		if j.err == nil {
			full := path.Join(j.v.share, j.v.dir)
			users, err := p.volumeUsers(j.v.server, full, "")
			if err != nil || len(users) > 0 || p.cfg.Volumes == nil {
				failed = errors.Join(failed, err)
				p.clones.forget(j.v.claim.UID, j)
				continue
			}
			err = p.onExport(ctx, j.v.server, j.v.share, p.cfg.RemoveTimeout, func(ctx context.Context, fsys export.FS) error {
				return fsys.RemoveAll(ctx, j.v.dir, nil)
			})
			if err != nil {
				failed = errors.Join(failed, err)
				continue // tried again at the next sweep
			}
			klog.FromContext(ctx).Info("removed the copy of a clone whose claim was deleted before its PV was made", "pvc", klog.KObj(j.v.claim), "dir", j.v.dir)
		}
		p.clones.forget(j.v.claim.UID, j)
	}
	return failed
}

// sweepStaging removes this install's staging directories of one export that no running copy
// writes.
func (p *Provisioner) sweepStaging(ctx context.Context, server, share string) error {
	root, err := p.stagingRoot(ctx)
	if err != nil {
		return err
	}
	return p.onExport(ctx, server, share, p.cfg.RemoveTimeout, func(ctx context.Context, fsys export.FS) error {
		tree := fsys.Tree()
		dir, _, err := tree.OpenDir(ctx, root)
		if err != nil {
			if errors.Is(err, export.ErrNotExist) {
				return nil
			}
			return err
		}
		var at export.DirCursor
		for {
			ents, next, eof, err := tree.ReadDir(ctx, dir, at)
			if err != nil {
				return err
			}
			for _, e := range ents {
				if p.clones.stagedBy(e.Name) {
					continue
				}
				if users, err := p.volumeUsers(server, path.Join(share, root, e.Name), ""); err != nil || len(users) > 0 {
					continue // never a directory a PV uses (none should be placed here)
				}
				klog.FromContext(ctx).Info("removing a clone's leftover staging directory", "server", server, "share", share, "dir", path.Join(root, e.Name))
				if err := fsys.RemoveAll(ctx, path.Join(root, e.Name), nil); err != nil {
					return err
				}
			}
			if eof || len(ents) == 0 && next == at {
				return nil
			}
			at = next
		}
	})
}
