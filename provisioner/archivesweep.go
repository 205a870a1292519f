package provisioner

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/klog/v2"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// Reasons of the Events on a StorageClass about its archives.
const (
	ReasonArchivePurged   = "ArchivePurged"
	ReasonArchiveKept     = "ArchiveKept"
	ReasonArchivePurgeDue = "ArchivePurgeDue" // dry run: what a sweep would remove
)

// retentionOf is the archiveRetention of the class now, 0 when it has none (or the class is
// gone, or archives cannot be recorded).
func (p *Provisioner) retentionOf(className string) time.Duration {
	class := p.classOf(className)
	if class == nil || p.cfg.Archives == nil {
		return 0
	}
	opts, err := ParseClassOptions(class.Parameters)
	if err != nil {
		return 0
	}
	return opts.Retention
}

func (p *Provisioner) classOf(name string) *storagev1.StorageClass {
	if p.cfg.Classes == nil || name == "" {
		return nil
	}
	class, err := p.cfg.Classes.Get(name)
	if err != nil {
		return nil
	}
	return class
}

// archiveRecorded archives loc like archive does, with a record written first (the directory's
// ID, which the rename keeps) and completed after, so that the sweeper can purge the archive
// later, and only it. A retry after a crash in between finds the record and the archive by its
// ID.
func (p *Provisioner) archiveRecorded(ctx context.Context, fsys export.FS, pv *v1.PersistentVolume, loc volumeLocation) (string, error) {
	rec, found, err := p.cfg.Archives.Get(ctx, pv.Name)
	if err != nil {
		return "", err
	}
	if found && rec.Archive != "" {
		return rec.Archive, nil // done by an earlier attempt
	}
	if !found {
		info, err := fsys.Stat(ctx, loc.dir)
		if errors.Is(err, export.ErrNotExist) {
			return "", nil // gone before any record: nothing to keep track of
		}
		if err != nil {
			return "", err
		}
		rec = ArchiveRecord{PV: pv.Name, Class: pv.Spec.StorageClassName, Server: loc.server, Share: loc.share, Dir: loc.dir, ID: info.ID}
		if ref := pv.Spec.ClaimRef; ref != nil {
			// The namespace's UID as it was when the volume was made, never read now: by now the
			// namespace may be another tenant's of the same name.
			rec.Namespace, rec.Claim, rec.NamespaceUID = ref.Namespace, ref.Name, pv.Annotations[AnnNamespaceUID]
		}
		if err := p.cfg.Archives.Put(ctx, rec); err != nil {
			return "", err
		}
	}
	if found { // pending: the directory still there is what this attempt renames
		if info, err := fsys.Stat(ctx, loc.dir); err == nil && info.ID != rec.ID {
			rec.ID = info.ID
			if err := p.cfg.Archives.Put(ctx, rec); err != nil {
				return "", err
			}
		}
	}
	target, err := archive(ctx, fsys, loc.dir)
	if err != nil {
		return "", err
	}
	if target == "" { // renamed by an attempt that did not live to record it
		if target, err = findArchive(ctx, fsys, loc.dir, rec.ID); err != nil {
			return "", err
		}
		if target == "" {
			return "", p.cfg.Archives.Delete(ctx, pv.Name) // the directory is gone
		}
	}
	// The archive's own ID, for the sweeper: on a server whose handles name paths a rename
	// changes it.
	info, err := fsys.Stat(ctx, target)
	if err != nil {
		return "", err
	}
	rec.Archive, rec.ID, rec.ArchivedAt = target, info.ID, time.Now()
	return target, p.cfg.Archives.Put(ctx, rec)
}

// findArchive is the archive name of dir whose ID is id, "" when there is none.
func findArchive(ctx context.Context, fsys export.FS, dir, id string) (string, error) {
	for n := 0; n < maxArchiveAttempts; n++ {
		info, err := fsys.Stat(ctx, ArchiveName(dir, n))
		switch {
		case errors.Is(err, export.ErrNotExist):
		case err != nil:
			return "", err
		case info.IsDir && info.ID == id:
			return ArchiveName(dir, n), nil
		}
	}
	return "", nil
}

// SweepArchives runs the archive sweeper every interval until ctx ends (leader only): every
// recorded archive older than its class's archiveRetention is removed, with the same streaming,
// bounded delete as onDelete=delete, and an ArchivePurged Event on the class. An archive whose
// path now holds something else (not the recorded directory) is kept, with an ArchiveKept
// Warning. interval <= 0 disables it.
func (p *Provisioner) SweepArchives(ctx context.Context, interval time.Duration) {
	if interval <= 0 || p.cfg.Archives == nil {
		return
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		p.sweepArchives(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (p *Provisioner) sweepArchives(ctx context.Context, now time.Time) {
	logger := klog.FromContext(ctx)
	records, err := p.cfg.Archives.List(ctx)
	if err != nil {
		logger.Error(err, "archive sweep")
		return
	}
	recorded, purged := map[string]int{}, map[string]int{}
	for _, rec := range records {
		class := p.classOf(rec.Class)
		done, err := p.sweepArchive(ctx, rec, class, now)
		switch {
		case err != nil:
			logger.Error(err, "archive sweep", "archive", rec.Archive, "server", rec.Server, "pv", rec.PV)
			recorded[rec.Class]++
		case done:
			purged[rec.Class]++
		default:
			recorded[rec.Class]++
		}
	}
	if p.cfg.Observe != nil {
		p.cfg.Observe.ArchivesSwept(recorded, purged)
	}
}

// sweepArchive purges one recorded archive when its time has come; done says the record is gone.
// An archive a PV uses (a static PV made to recover it) or one being restored is left alone; the
// record is marked purging first, so a restore never takes an archive half removed.
func (p *Provisioner) sweepArchive(ctx context.Context, rec ArchiveRecord, class *storagev1.StorageClass, now time.Time) (done bool, err error) {
	if rec.Archive == "" || class == nil {
		return false, nil // pending (its Delete finishes it), or its class is gone: kept
	}
	retention := p.retentionOf(rec.Class)
	if retention <= 0 || now.Before(rec.ArchivedAt.Add(retention)) {
		return false, nil
	}
	where := fmt.Sprintf("%s on %s:%s", rec.Archive, rec.Server, rec.Share)
	if users := p.archiveUsers(rec); len(users) > 0 {
		p.cfg.Recorder.Eventf(class, v1.EventTypeWarning, ReasonArchiveKept, "archive %s is past %s=%s, but PV %s uses it; it is kept while it does",
			where, ParamArchiveRetention, retention, strings.Join(users, ", "))
		return false, nil
	}
	release, ok := p.archiveBusy.take(rec.PV)
	if !ok {
		return false, nil // being restored: the next sweep looks again
	}
	defer release()
	if !rec.Purging && !p.cfg.SweepDryRun {
		rec.Purging = true
		if err := p.cfg.Archives.Put(ctx, rec); err != nil {
			return false, err
		}
	}
	kept, gone, removed, err := p.purgeArchive(ctx, rec, class, where, retention)
	if errors.Is(err, errDryRun) {
		p.cfg.Recorder.Eventf(class, v1.EventTypeNormal, ReasonArchivePurgeDue, "would remove archive %s of claim %s/%s (PV %s), archived %s, past %s=%s (dry run: --archive-sweep-dry-run; nothing is removed)",
			where, rec.Namespace, rec.Claim, rec.PV, rec.ArchivedAt.UTC().Format(time.RFC3339), ParamArchiveRetention, retention)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("purge archive %s (%d files and %d directories removed so far; the next sweep continues): %w%s", where, removed.Files, removed.Dirs, err, hint(err))
	}
	switch {
	case kept != "":
		p.cfg.Recorder.Event(class, v1.EventTypeWarning, ReasonArchiveKept, kept)
	case gone != "":
		p.cfg.Recorder.Eventf(class, v1.EventTypeNormal, ReasonArchivePurged, "archive %s of claim %s/%s (PV %s) %s; its record is dropped", where, rec.Namespace, rec.Claim, rec.PV, gone)
	default:
		p.cfg.Recorder.Eventf(class, v1.EventTypeNormal, ReasonArchivePurged, "removed archive %s of claim %s/%s (PV %s), archived %s, past %s=%s",
			where, rec.Namespace, rec.Claim, rec.PV, rec.ArchivedAt.UTC().Format(time.RFC3339), ParamArchiveRetention, retention)
		klog.FromContext(ctx).Info("archive purged", "archive", rec.Archive, "server", rec.Server, "share", rec.Share, "pv", rec.PV, "class", rec.Class,
			"files", removed.Files, "dirs", removed.Dirs)
	}
	return true, p.cfg.Archives.Delete(ctx, rec.PV)
}

// purgeArchive removes the recorded archive, unless what is at its path is not the archived
// directory (kept says why) or it is gone already (gone says so); in a dry run it stops with
// errDryRun before removing anything.
func (p *Provisioner) purgeArchive(ctx context.Context, rec ArchiveRecord, class *storagev1.StorageClass, where string, retention time.Duration) (kept, gone string, removed export.Removed, err error) {
	err = p.onExport(ctx, rec.Server, rec.Share, p.cfg.RemoveTimeout, func(ctx context.Context, fsys export.FS) error {
		info, err := fsys.Stat(ctx, rec.Archive)
		switch {
		case errors.Is(err, export.ErrNotExist):
			gone = "was gone already (removed by hand)"
			return nil
		case err != nil:
			return err
		case !info.IsDir || info.ID != rec.ID:
			kept = fmt.Sprintf("archive %s of claim %s/%s (PV %s) is past %s=%s, but what is there now is not the directory that was archived; it is kept, and its record dropped",
				where, rec.Namespace, rec.Claim, rec.PV, ParamArchiveRetention, retention)
			return nil
		case p.cfg.SweepDryRun:
			return answeredError{errDryRun} // the server answered: not a failure for the gate
		}
		err = fsys.RemoveAll(ctx, rec.Archive, p.removalProgress(rec.Server, func(r export.Removed) {
			p.cfg.Recorder.Eventf(class, v1.EventTypeNormal, ReasonRemovingDirectory, "purging archive %s: %d files and %d directories removed so far", where, r.Files, r.Dirs)
		}, func(r export.Removed) { removed = r }))
		if err != nil && removed.Files+removed.Dirs > 0 {
			err = answeredError{err} // the server answered many calls: it is up
		}
		return err
	})
	return kept, gone, removed, err
}

// archiveUsers are the PVs whose path is the archive's or lies inside it.
func (p *Provisioner) archiveUsers(rec ArchiveRecord) []string {
	users, err := p.volumeUsers(rec.Server, path.Join(rec.Share, rec.Archive), "")
	if err != nil {
		return []string{"(unknown: " + err.Error() + ")"}
	}
	return users
}

// errDryRun stops a purge before anything is removed, in a dry run.
var errDryRun = errors.New("dry run")

// busySet marks records being purged or restored, so that the sweeper and a restore never act on
// one archive at once (both run in the leader).
type busySet struct {
	mu   sync.Mutex
	busy map[string]bool
}

// take marks key busy and returns how to release it, or false when it is busy already.
func (b *busySet) take(key string) (release func(), ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.busy[key] {
		return nil, false
	}
	if b.busy == nil {
		b.busy = map[string]bool{}
	}
	b.busy[key] = true
	return func() {
		b.mu.Lock()
		delete(b.busy, key)
		b.mu.Unlock()
	}, true
}
