package archive

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
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// Reasons of the Events on a StorageClass about its archives.
const (
	ReasonArchivePurged   = "ArchivePurged"
	ReasonArchiveKept     = "ArchiveKept"
	ReasonArchivePurgeDue = "ArchivePurgeDue" // dry run: what a sweep would remove
)

// archiveRecorded archives loc like rename does, with a record written first (the directory's
// ID, which the rename keeps) and completed after, so that the sweeper can purge the archive
// later, and only it. A retry after a crash in between finds the record and the archive by its
// ID.
func (k *Keeper) archiveRecorded(ctx context.Context, fsys export.FS, pv *v1.PersistentVolume, loc volume.Location) (string, error) {
	rec, found, err := k.cfg.Records.Get(ctx, pv.Name)
	if err != nil {
		return "", err
	}
	if found && rec.Archive != "" {
		return rec.Archive, nil // done by an earlier attempt
	}
	if !found {
		info, err := fsys.Stat(ctx, loc.Dir)
		if errors.Is(err, export.ErrNotExist) {
			return "", nil // gone before any record: nothing to keep track of
		}
		if err != nil {
			return "", err
		}
		rec = Record{PV: pv.Name, Class: pv.Spec.StorageClassName, Server: loc.Server, Share: loc.Share, Dir: loc.Dir, ID: info.ID, Version: export.VersionOf(fsys)}
		if ref := pv.Spec.ClaimRef; ref != nil {
			// The namespace's UID as it was when the volume was made, never read now: by now the
			// namespace may be another tenant's of the same name.
			rec.Namespace, rec.Claim, rec.NamespaceUID = ref.Namespace, ref.Name, pv.Annotations[volume.AnnNamespaceUID]
		}
		if err := k.cfg.Records.Put(ctx, rec); err != nil {
			return "", err
		}
	}
	if found { // pending: the directory still there is what this attempt renames
		if info, err := fsys.Stat(ctx, loc.Dir); err == nil && info.ID != rec.ID {
			rec.ID = info.ID
			if err := k.cfg.Records.Put(ctx, rec); err != nil {
				return "", err
			}
		}
	}
	target, err := rename(ctx, fsys, loc.Dir)
	if err != nil {
		return "", err
	}
	if target == "" { // renamed by an attempt that did not live to record it
		if target, err = findArchive(ctx, fsys, loc.Dir, rec.ID); err != nil {
			return "", err
		}
		if target == "" {
			return "", k.cfg.Records.Delete(ctx, pv.Name) // the directory is gone
		}
	}
	// The archive's own ID, for the sweeper: on a server whose handles name paths a rename
	// changes it.
	info, err := fsys.Stat(ctx, target)
	if err != nil {
		return "", err
	}
	rec.Archive, rec.ID, rec.ArchivedAt = target, info.ID, time.Now()
	return target, k.cfg.Records.Put(ctx, rec)
}

// findArchive is the archive name of dir whose ID is id, "" when there is none.
func findArchive(ctx context.Context, fsys export.FS, dir, id string) (string, error) {
	for n := 0; n < volume.MaxArchiveAttempts; n++ {
		info, err := fsys.Stat(ctx, volume.ArchiveName(dir, n))
		switch {
		case errors.Is(err, export.ErrNotExist):
		case err != nil:
			return "", err
		case info.IsDir && info.ID == id:
			return volume.ArchiveName(dir, n), nil
		}
	}
	return "", nil
}

// Sweep runs the archive sweeper every interval until ctx ends (leader only): every
// recorded archive older than its class's archiveRetention is removed, with the same streaming,
// bounded delete as onDelete=delete, and an ArchivePurged Event on the class. An archive whose
// path now holds something else (not the recorded directory) is kept, with an ArchiveKept
// Warning. interval <= 0 disables it.
func (k *Keeper) Sweep(ctx context.Context, interval time.Duration) {
	if interval <= 0 || k.cfg.Records == nil {
		return
	}
	wait.UntilWithContext(ctx, func(ctx context.Context) { k.SweepOnce(ctx, time.Now()) }, interval)
}

// SweepOnce is one sweep, as of now.
func (k *Keeper) SweepOnce(ctx context.Context, now time.Time) {
	logger := klog.FromContext(ctx)
	records, err := k.cfg.Records.List(ctx)
	if err != nil {
		logger.Error(err, "archive sweep")
		return
	}
	recorded, purged := map[string]int{}, map[string]int{}
	for _, rec := range records {
		sc := k.cfg.Locator.Class(rec.Class)
		done, err := k.sweepArchive(ctx, rec, sc, now)
		switch {
		case errors.Is(err, errRecordGone): // restored meanwhile: neither kept nor purged
		case err != nil:
			logger.Error(err, "archive sweep", "archive", rec.Archive, "server", rec.Server, "pv", rec.PV)
			recorded[rec.Class]++
		case done:
			purged[rec.Class]++
		default:
			recorded[rec.Class]++
		}
	}
	if k.cfg.Observe != nil {
		k.cfg.Observe.ArchivesSwept(recorded, purged)
	}
}

// sweepArchive purges one recorded archive when its time has come; done says the record is gone.
// An archive a PV uses (a static PV made to recover it) or one being restored is left alone; the
// record is marked purging first, so a restore never takes an archive half removed.
func (k *Keeper) sweepArchive(ctx context.Context, rec Record, sc *storagev1.StorageClass, now time.Time) (done bool, err error) {
	if rec.Archive == "" || sc == nil {
		return false, nil // pending (its Delete finishes it), or its class is gone: kept
	}
	retention := k.retention(rec.Class)
	if retention <= 0 || now.Before(rec.ArchivedAt.Add(retention)) {
		return false, nil
	}
	where := fmt.Sprintf("%s on %s:%s", rec.Archive, rec.Server, rec.Share)
	if users := k.archiveUsers(rec); len(users) > 0 {
		k.cfg.Recorder.Eventf(sc, v1.EventTypeWarning, ReasonArchiveKept, "archive %s is past %s=%s, but PV %s uses it; it is kept while it does",
			where, class.ParamArchiveRetention, retention, strings.Join(users, ", "))
		return false, nil
	}
	release, ok := k.busy.take(rec.PV)
	if !ok {
		return false, nil // being restored: the next sweep looks again
	}
	defer release()
	// The record as it is now, under the lock: a restore that ended since the listing dropped it
	// (and the directory at its path may be a new archive by now).
	listed := rec
	rec, found, err := k.cfg.Records.Get(ctx, listed.PV)
	switch {
	case err != nil:
		return false, err
	case !found:
		return false, errRecordGone
	case rec.Archive != listed.Archive || rec.ID != listed.ID || !rec.ArchivedAt.Equal(listed.ArchivedAt):
		return false, nil // archived again since: the next sweep judges the new record
	}
	if !rec.Purging && !k.cfg.DryRun {
		rec.Purging = true
		if err := k.cfg.Records.Put(ctx, rec); err != nil {
			return false, err
		}
	}
	kept, gone, removed, err := k.purgeArchive(ctx, rec, sc, where, retention)
	if errors.Is(err, errDryRun) {
		k.cfg.Recorder.Eventf(sc, v1.EventTypeNormal, ReasonArchivePurgeDue, "would remove archive %s of claim %s/%s (PV %s), archived %s, past %s=%s (dry run: --archive-sweep-dry-run; nothing is removed)",
			where, rec.Namespace, rec.Claim, rec.PV, rec.ArchivedAt.UTC().Format(time.RFC3339), class.ParamArchiveRetention, retention)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("purge archive %s (%d files and %d directories removed so far; the next sweep continues): %w%s", where, removed.Files, removed.Dirs, err, volume.Hint(err))
	}
	switch {
	case kept != "":
		k.cfg.Recorder.Event(sc, v1.EventTypeWarning, ReasonArchiveKept, kept)
	case gone != "":
		k.cfg.Recorder.Eventf(sc, v1.EventTypeNormal, ReasonArchivePurged, "archive %s of claim %s/%s (PV %s) %s; its record is dropped", where, rec.Namespace, rec.Claim, rec.PV, gone)
	default:
		k.cfg.Recorder.Eventf(sc, v1.EventTypeNormal, ReasonArchivePurged, "removed archive %s of claim %s/%s (PV %s), archived %s, past %s=%s",
			where, rec.Namespace, rec.Claim, rec.PV, rec.ArchivedAt.UTC().Format(time.RFC3339), class.ParamArchiveRetention, retention)
		klog.FromContext(ctx).Info("archive purged", "archive", rec.Archive, "server", rec.Server, "share", rec.Share, "pv", rec.PV, "class", rec.Class,
			"files", removed.Files, "dirs", removed.Dirs)
	}
	return true, k.cfg.Records.Delete(ctx, rec.PV)
}

// purgeArchive removes the recorded archive, unless what is at its path is not the archived
// directory (kept says why) or it is gone already (gone says so); in a dry run it stops with
// errDryRun before removing anything.
func (k *Keeper) purgeArchive(ctx context.Context, rec Record, sc *storagev1.StorageClass, where string, retention time.Duration) (kept, gone string, removed export.Removed, err error) {
	err = k.cfg.Gate.Do(export.WithVersion(ctx, rec.Version), rec.Server, rec.Share, k.cfg.RemoveTimeout, func(ctx context.Context, fsys export.FS) error {
		info, err := fsys.Stat(ctx, rec.Archive)
		switch {
		case errors.Is(err, export.ErrNotExist):
			gone = "was gone already (removed by hand)"
			return nil
		case err != nil:
			return err
		case !info.IsDir || info.ID != rec.ID:
			kept = fmt.Sprintf("archive %s of claim %s/%s (PV %s) is past %s=%s, but what is there now is not the directory that was archived; it is kept, and its record dropped",
				where, rec.Namespace, rec.Claim, rec.PV, class.ParamArchiveRetention, retention)
			return nil
		case k.cfg.DryRun:
			return export.Answered(errDryRun) // the server answered: not a failure for the gate
		}
		err = fsys.RemoveAll(ctx, rec.Archive, volume.RemovalProgress(k.observer(), rec.Server, func(r export.Removed) {
			k.cfg.Recorder.Eventf(sc, v1.EventTypeNormal, volume.ReasonRemovingDirectory, "purging archive %s: %d files and %d directories removed so far", where, r.Files, r.Dirs)
		}, func(r export.Removed) { removed = r }))
		if ctx.Err() != nil && removed.Files+removed.Dirs > 0 {
			err = export.Answered(err) // out of its own time after many answers: the server is up
		}
		return err
	})
	return kept, gone, removed, err
}

// archiveUsers are the PVs whose path is the archive's or lies inside it.
func (k *Keeper) archiveUsers(rec Record) []string {
	users, err := volume.Users(k.cfg.Volumes, rec.Server, path.Join(rec.Share, rec.Archive), "")
	if err != nil {
		return []string{"(unknown: " + err.Error() + ")"}
	}
	return users
}

// errRecordGone says a listed record was gone once its archive was locked.
var errRecordGone = errors.New("the archive's record is gone")

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

// observer is the Observe of the config as a RemovalObserver, nil when there is none.
func (k *Keeper) observer() volume.RemovalObserver {
	if k.cfg.Observe == nil {
		return nil
	}
	return k.cfg.Observe
}
