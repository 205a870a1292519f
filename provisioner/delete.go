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

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// volumeLocation is where a PV's directory lives and what to do with it.
type volumeLocation struct {
	server, share, dir string
	onDelete           OnDelete
}

func (l volumeLocation) String() string { return l.server + ":" + path.Join(l.share, l.dir) }

// Delete archives, removes or keeps the PV's directory, as recorded on the
// PV when it was provisioned. It never touches the export root, anything
// outside the export, or a directory another PV still uses (a PV the
// informer does not know yet included: see pathLocks); a directory that is
// already gone is success, so retries converge.
func (p *Provisioner) Delete(ctx context.Context, pv *v1.PersistentVolume) error {
	logger := klog.FromContext(ctx).WithValues("pv", pv.Name)
	loc, err := p.locate(pv)
	if err != nil {
		return fmt.Errorf("refusing to delete the directory of PV %s, its data is kept: %w; delete the PV object by hand once you have dealt with the directory", pv.Name, err)
	}
	p.locks.forgetVolume(loc.server, pv.Name)
	if loc.onDelete == OnDeleteRetain {
		logger.V(2).Info("directory retained", "location", loc)
		return nil
	}
	users, err := p.otherUsers(pv, loc)
	if err != nil {
		return fmt.Errorf("check which PVs use %s: %w", loc, err)
	}
	if len(users) > 0 {
		msg := fmt.Sprintf("directory %s is kept: PV %s still uses it (or a directory inside it); onDelete=%s was not applied",
			loc, strings.Join(users, ", "), loc.onDelete)
		p.cfg.Recorder.Event(pv, v1.EventTypeWarning, ReasonDirectoryKept, msg)
		logger.Info("directory kept, still in use", "location", loc, "users", users)
		return nil
	}
	end, fresh := p.locks.beginDelete(loc.server, path.Join(loc.share, loc.dir), pv.Name)
	if len(fresh) > 0 {
		// Not kept for good: the new volume's PV is about to reach the
		// informer, and the next attempt keeps the directory for it.
		return fmt.Errorf("directory %s is left alone for now: PV %s, provisioned a moment ago, lies inside it; this is retried", loc, strings.Join(fresh, ", "))
	}
	defer end()

	if loc.onDelete == OnDeleteDelete {
		return p.remove(ctx, pv, loc)
	}
	var archived string
	retention := p.retentionOf(pv.Spec.StorageClassName)
	err = p.onExport(ctx, loc.server, loc.share, p.cfg.Timeout, func(ctx context.Context, fsys export.FS) (err error) {
		if retention > 0 {
			archived, err = p.archiveRecorded(ctx, fsys, pv, loc)
		} else {
			archived, err = archive(ctx, fsys, loc.dir)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("archive %s: %w%s", loc, err, hint(err))
	}
	logger.V(2).Info("directory archived", "location", loc, "archive", archived)
	return nil
}

// remove deletes the directory tree of loc. A big tree takes a while: a
// RemovingDirectory Event on the PV tells how far it got every 10 s, and
// the removed entries are counted in the metrics as they go. What was
// removed stays removed when it fails, so the retry continues.
func (p *Provisioner) remove(ctx context.Context, pv *v1.PersistentVolume, loc volumeLocation) error {
	var last export.Removed
	progress := p.removalProgress(loc.server, func(r export.Removed) {
		last = r
		p.cfg.Recorder.Eventf(pv, v1.EventTypeNormal, ReasonRemovingDirectory, "removing directory %s: %d files and %d directories removed so far", loc, r.Files, r.Dirs)
	}, func(r export.Removed) { last = r })
	start := time.Now()
	// When the server is being probed, a cheap call is the probe, so that a
	// removal of many minutes never holds every other operation on the
	// server back.
	var err error
	if !p.gate.healthy(loc.server) {
		err = p.onExport(ctx, loc.server, loc.share, p.cfg.Timeout, func(ctx context.Context, fsys export.FS) error {
			_, err := fsys.Stat(ctx, loc.dir)
			if errors.Is(err, export.ErrNotExist) || errors.Is(err, export.ErrNotDir) {
				return nil // RemoveAll deals with these
			}
			return err
		})
	}
	if err == nil {
		err = p.onExport(ctx, loc.server, loc.share, p.cfg.RemoveTimeout, func(ctx context.Context, fsys export.FS) error {
			err := fsys.RemoveAll(ctx, loc.dir, progress)
			if err != nil && last.Files+last.Dirs > 0 {
				// It ran out of time or failed after the server answered
				// many calls: the server is up.
				err = answeredError{err}
			}
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("remove %s (%d files and %d directories removed so far; a retry continues): %w%s", loc, last.Files, last.Dirs, err, hint(err))
	}
	klog.FromContext(ctx).V(2).Info("directory removed", "pv", pv.Name, "location", loc, "files", last.Files, "dirs", last.Dirs, "duration", time.Since(start))
	return nil
}

// VolumeSeen is the PV informer's add handler: once a PV is in the
// informer, its index answers for the PV's directory and the path lock
// record of the volume goes.
func (p *Provisioner) VolumeSeen(obj any) {
	if pv, ok := obj.(*v1.PersistentVolume); ok && pv.Spec.NFS != nil {
		p.locks.forgetVolume(pv.Spec.NFS.Server, pv.Name)
	}
}

// answeredError marks a failure after which the server is known to be up.
type answeredError struct{ err error }

func (e answeredError) Error() string        { return e.err.Error() }
func (e answeredError) Unwrap() error        { return e.err }
func (e answeredError) Is(target error) bool { return target == export.ErrServerReply }

// removeEventEvery is how often a long removal reports on its object (PV, or class).
const removeEventEvery = 10 * time.Second

// removalProgress is a RemoveAll progress function of a removal on server: it counts the removed
// entries in the metrics as they go, tells every total to each, and to event at most every
// removeEventEvery (an Event on the object being removed for).
func (p *Provisioner) removalProgress(server string, event func(export.Removed), each ...func(export.Removed)) func(export.Removed) {
	var last export.Removed
	lastEvent := time.Now()
	return func(r export.Removed) {
		if p.cfg.Observe != nil {
			p.cfg.Observe.RemovedEntries(server, r.Files-last.Files, r.Dirs-last.Dirs)
		}
		last = r
		for _, fn := range each {
			fn(r)
		}
		if time.Since(lastEvent) >= removeEventEvery {
			lastEvent = time.Now()
			event(r)
		}
	}
}

// locate reads where a PV's directory is. PVs this provisioner made carry
// annotations; PVs made by nfs-subdir-external-provisioner (users switching
// over) are understood when they lie below the default export path.
func (p *Provisioner) locate(pv *v1.PersistentVolume) (volumeLocation, error) {
	if pv.Spec.NFS == nil {
		return volumeLocation{}, fmt.Errorf("it is not an NFS volume")
	}
	loc := volumeLocation{server: pv.Spec.NFS.Server}
	full := pv.Spec.NFS.Path
	if share, ok := pv.Annotations[AnnShare]; ok {
		var err error
		if loc.share, err = CleanShare(share); err != nil {
			return loc, fmt.Errorf("annotation %s: %w", AnnShare, err)
		}
		loc.dir = pv.Annotations[AnnDirectory]
		loc.onDelete = OnDelete(pv.Annotations[AnnOnDelete])
		if path.Join(loc.share, loc.dir) != path.Clean(full) {
			return loc, fmt.Errorf("spec.nfs.path %q does not match its annotations %s=%q and %s=%q (was the PV edited?)",
				full, AnnShare, loc.share, AnnDirectory, loc.dir)
		}
	} else {
		if err := p.locateLegacy(pv, &loc); err != nil {
			return loc, err
		}
	}
	clean, err := SafeRelPath(loc.dir)
	if err != nil {
		return loc, fmt.Errorf("directory %q: %w", loc.dir, err)
	}
	if clean != loc.dir {
		return loc, fmt.Errorf("directory %q is not in canonical form", loc.dir)
	}
	switch loc.onDelete {
	case OnDeleteArchive, OnDeleteDelete, OnDeleteRetain:
	default:
		return loc, fmt.Errorf("annotation %s=%q is not archive, delete or retain", AnnOnDelete, loc.onDelete)
	}
	return loc, nil
}

// locateLegacy handles a PV without our annotations: its path must lie
// strictly below the default export path on the default server, and the
// delete policy comes from its StorageClass (archive when the class is gone:
// when in doubt, keep the data).
func (p *Provisioner) locateLegacy(pv *v1.PersistentVolume, loc *volumeLocation) error {
	share := p.cfg.DefaultShare
	if share == "" || export.CanonicalServer(loc.server) != export.CanonicalServer(p.cfg.DefaultServer) {
		return fmt.Errorf("it has no %s annotation and is not on the default export %s:%s", AnnShare, p.cfg.DefaultServer, share)
	}
	full := path.Clean(pv.Spec.NFS.Path)
	rel, ok := strings.CutPrefix(full, strings.TrimRight(share, "/")+"/")
	if !ok {
		return fmt.Errorf("its path %q is not below the default export path %s", pv.Spec.NFS.Path, share)
	}
	loc.share, loc.dir, loc.onDelete = share, rel, OnDeleteArchive
	if p.cfg.Classes == nil || pv.Spec.StorageClassName == "" {
		return nil
	}
	sc, err := p.cfg.Classes.Get(pv.Spec.StorageClassName)
	if err != nil {
		return nil
	}
	opts, err := ParseClassOptions(sc.Parameters)
	if err != nil {
		return nil
	}
	loc.onDelete = opts.OnDelete
	return nil
}

// otherUsers names the PVs other than pv whose directory is loc.dir or lies
// inside it.
func (p *Provisioner) otherUsers(pv *v1.PersistentVolume, loc volumeLocation) ([]string, error) {
	return p.volumeUsers(loc.server, path.Join(loc.share, loc.dir), pv.Name)
}

// volumeUsers names the PVs (but except) whose NFS path on server is dir or lies below it.
func (p *Provisioner) volumeUsers(server, dir, except string) ([]string, error) {
	if p.cfg.Volumes == nil {
		return nil, nil
	}
	pvs, err := p.cfg.Volumes.VolumesUsing(server, dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, other := range pvs {
		if other.Name != except {
			names = append(names, other.Name)
		}
	}
	return names, nil
}
