package provisioner

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// Delete archives, removes or keeps the PV's directory, as recorded on the PV when it was
// provisioned. It never touches the export root, anything outside it, or a directory another PV
// still uses (a PV the informer does not know yet included: see placement.Locks); a directory
// that is already gone is success, so retries converge.
func (p *Provisioner) Delete(ctx context.Context, pv *v1.PersistentVolume) error {
	logger := klog.FromContext(ctx).WithValues("pv", pv.Name)
	loc, err := p.cfg.Locator.Locate(pv)
	if err != nil {
		return fmt.Errorf("refusing to delete the directory of PV %s, its data is kept: %w; delete the PV object by hand once you have dealt with the directory", pv.Name, err)
	}
	p.locks.ForgetVolume(loc.Server, pv.Name)
	ctx = export.WithVersion(ctx, loc.Version)
	if loc.OnDelete == class.OnDeleteRetain {
		logger.V(2).Info("directory retained", "location", loc)
		return nil
	}
	users, err := volume.Users(p.cfg.Volumes, loc.Server, path.Join(loc.Share, loc.Dir), pv.Name)
	if err != nil {
		return fmt.Errorf("check which PVs use %s: %w", loc, err)
	}
	if len(users) > 0 {
		msg := fmt.Sprintf("directory %s is kept: PV %s still uses it (or a directory inside it); onDelete=%s was not applied",
			loc, strings.Join(users, ", "), loc.OnDelete)
		p.cfg.Recorder.Event(pv, v1.EventTypeWarning, ReasonDirectoryKept, msg)
		logger.Info("directory kept, still in use", "location", loc, "users", users)
		return nil
	}
	end, fresh := p.locks.BeginDelete(loc.Server, path.Join(loc.Share, loc.Dir), pv.Name)
	if len(fresh) > 0 {
		// Not kept for good: the new volume's PV is about to reach the informer, and the next
		// attempt keeps the directory for it.
		return fmt.Errorf("directory %s is left alone for now: PV %s, provisioned a moment ago, lies inside it; this is retried", loc, strings.Join(fresh, ", "))
	}
	defer end()

	if loc.OnDelete == class.OnDeleteDelete {
		return p.remove(ctx, pv, loc)
	}
	var archived string
	err = p.cfg.Gate.Do(ctx, loc.Server, loc.Share, p.cfg.Timeout, func(ctx context.Context, fsys export.FS) (err error) {
		archived, err = p.cfg.Archives.Archive(ctx, fsys, pv, loc)
		return err
	})
	if err != nil {
		return fmt.Errorf("archive %s: %w%s", loc, err, volume.Hint(err))
	}
	logger.V(2).Info("directory archived", "location", loc, "archive", archived)
	return nil
}

// remove deletes the directory tree of loc. A big tree takes a while: a RemovingDirectory Event
// on the PV tells how far it got every 10 s, and the removed entries are counted in the metrics
// as they go. What was removed stays removed when it fails, so the retry continues.
func (p *Provisioner) remove(ctx context.Context, pv *v1.PersistentVolume, loc volume.Location) error {
	var last export.Removed
	progress := volume.RemovalProgress(p.cfg.Observe, loc.Server, func(r export.Removed) {
		p.cfg.Recorder.Eventf(pv, v1.EventTypeNormal, volume.ReasonRemovingDirectory, "removing directory %s: %d files and %d directories removed so far", loc, r.Files, r.Dirs)
	}, func(r export.Removed) { last = r })
	start := time.Now()
	// When the server is being probed, a cheap call is the probe, so that a removal of many
	// minutes never holds every other operation on the server back.
	var err error
	if !p.cfg.Gate.Healthy(loc.Server) {
		err = p.cfg.Gate.Do(ctx, loc.Server, loc.Share, p.cfg.Timeout, func(ctx context.Context, fsys export.FS) error {
			_, err := fsys.Stat(ctx, loc.Dir)
			if errors.Is(err, export.ErrNotExist) || errors.Is(err, export.ErrNotDir) {
				return nil // RemoveAll deals with these
			}
			return err
		})
	}
	if err == nil {
		err = p.cfg.Gate.Do(ctx, loc.Server, loc.Share, p.cfg.RemoveTimeout, func(ctx context.Context, fsys export.FS) error {
			err := fsys.RemoveAll(ctx, loc.Dir, progress)
			if ctx.Err() != nil && last.Files+last.Dirs > 0 {
				// It ran out of its own time after the server answered many calls: the server is
				// up (the retry continues). A call that got no answer still counts.
				err = export.Answered(err)
			}
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("remove %s (%d files and %d directories removed so far; a retry continues): %w%s", loc, last.Files, last.Dirs, err, volume.Hint(err))
	}
	klog.FromContext(ctx).V(2).Info("directory removed", "pv", pv.Name, "location", loc, "files", last.Files, "dirs", last.Dirs, "duration", time.Since(start))
	return nil
}

// VolumeSeen is the PV informer's add handler: once a PV is in the informer, its index answers
// for the PV's directory and the path lock record of the volume goes.
func (p *Provisioner) VolumeSeen(obj any) {
	if pv, ok := obj.(*v1.PersistentVolume); ok && pv.Spec.NFS != nil {
		p.locks.ForgetVolume(pv.Spec.NFS.Server, pv.Name)
	}
}
