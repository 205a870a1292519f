package archive

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

// AnnRestoreFrom on a new claim names an archive to take over instead of an empty directory: the
// name of the deleted claim it came from (the most recent archive of that claim), or the
// archive's directory name (archived-…). Only recorded archives (classes with archiveRetention)
// of a claim of the same namespace can be named.
const AnnRestoreFrom = "nfs-subdir-provisioner.io/restore-from"

// ReasonArchiveRestored is the Event on a claim that took over an archive.
const ReasonArchiveRestored = "ArchiveRestored"

// Restore is the content of a claim that takes over a recorded archive: the archive, renamed into
// place as the claim's directory.
type Restore struct {
	k   *Keeper
	rec Record // as listed when the claim was planned; read again under the archive's lock
}

// Wanted reports whether the claim asks to restore an archive.
func Wanted(claim *v1.PersistentVolumeClaim) bool {
	return strings.TrimSpace(claim.Annotations[AnnRestoreFrom]) != ""
}

// RestoreFor finds the archive record a claim asks to restore. Refusals (*volume.Refusal) say
// what to change; other errors (the API server) are retried.
func (k *Keeper) RestoreFor(ctx context.Context, claim *v1.PersistentVolumeClaim) (*Restore, error) {
	rec, err := k.restoreSource(ctx, claim)
	if err != nil {
		return nil, err
	}
	return &Restore{k: k, rec: *rec}, nil
}

// Fill moves the archive into place as v's directory (Provision's Content).
func (r *Restore) Fill(ctx context.Context, v volume.Volume) error { return r.k.restore(ctx, v, r.rec) }

func (k *Keeper) restoreSource(ctx context.Context, claim *v1.PersistentVolumeClaim) (*Record, error) {
	want := strings.TrimSpace(claim.Annotations[AnnRestoreFrom])
	refuse := func(format string, args ...any) error {
		return volume.Refuse("annotation %s=%q: %s; remove the annotation for an empty volume", AnnRestoreFrom, want, fmt.Sprintf(format, args...))
	}
	if k.cfg.Records == nil || k.cfg.Namespaces == nil {
		return nil, refuse("this provisioner keeps no archive records")
	}
	nsUID, err := k.cfg.Namespaces.NamespaceUID(ctx, claim.Namespace)
	if err != nil {
		return nil, err // retried
	}
	var found *Record
	records, err := k.cfg.Records.List(ctx)
	if err != nil {
		return nil, err // retried
	}
	for i := range records {
		r := &records[i]
		// Only this namespace's archives: another namespace's cannot even be named.
		if r.Namespace != claim.Namespace || r.Archive == "" || (r.Claim != want && path.Base(r.Archive) != want) {
			continue
		}
		if found == nil || r.ArchivedAt.After(found.ArchivedAt) {
			found = r
		}
	}
	if found != nil && (found.NamespaceUID == "" || found.NamespaceUID != nsUID) {
		return nil, refuse("archive %s is of claim %s of an earlier namespace named %s, not of this one", path.Base(found.Archive), found.Claim, claim.Namespace)
	}
	if found != nil && found.Purging {
		return nil, refuse("archive %s is being removed (past its class's %s)", path.Base(found.Archive), class.ParamArchiveRetention)
	}
	if found != nil {
		// One past its class's retention is the sweeper's: restoring it could race the purge.
		if retention := k.retention(found.Class); retention > 0 && time.Now().After(found.ArchivedAt.Add(retention)) {
			return nil, refuse("archive %s is past its class's %s=%s and is being removed", path.Base(found.Archive), class.ParamArchiveRetention, retention)
		}
	}
	if found == nil {
		return nil, refuse("no recorded archive of a claim of namespace %s has that name (only archives of classes with %s are recorded; one restored already is gone from the records)", claim.Namespace, class.ParamArchiveRetention)
	}
	return found, nil
}

// restore moves the archive of listed into place as v's directory, then drops its record. The
// record is read again under the archive's lock: a sweep that marked it purging since it was
// listed (and may have removed part of it before it failed) is never handed over. The archive
// must still be the recorded directory (its ID) and on v's export; the move never replaces
// anything at v's path. A retry after the move finds the directory at v's path by its ID and
// finishes. Only the moves are on the export, through the gate: what the API server says counts
// nothing against the NFS server.
func (k *Keeper) restore(ctx context.Context, v volume.Volume, listed Record) error {
	release, ok := k.busy.take(listed.PV)
	if !ok {
		return fmt.Errorf("archive %s is being purged or restored right now; this is retried", listed.Archive)
	}
	defer release()
	rec, found, err := k.cfg.Records.Get(ctx, listed.PV)
	if err != nil {
		return err
	}
	switch {
	case !found:
		return volume.Refuse("annotation %s: the record of archive %s of claim %s is gone (restored or purged meanwhile); remove the annotation for an empty volume", AnnRestoreFrom, listed.Archive, listed.Claim)
	case rec.Purging:
		return volume.Refuse("annotation %s: archive %s is being removed (past its class's %s); remove the annotation for an empty volume", AnnRestoreFrom, listed.Archive, class.ParamArchiveRetention)
	case rec.Archive != listed.Archive || rec.ID != listed.ID || rec.Namespace != listed.Namespace || rec.NamespaceUID != listed.NamespaceUID:
		return fmt.Errorf("the record of archive %s changed since it was read; this is retried", listed.Archive)
	case export.NewTarget(rec.Server, rec.Share) != export.NewTarget(v.Server, v.Share):
		return volume.Refuse("archive %s is on %s:%s, and this claim's class puts it on %s:%s; restore it with a class of that export",
			rec.Archive, rec.Server, rec.Share, v.Server, v.Share)
	}
	if users := k.archiveUsers(rec); len(users) > 0 {
		return volume.Refuse("archive %s on %s:%s is used by PV %s; it is left where it is", rec.Archive, rec.Server, rec.Share, strings.Join(users, ", "))
	}
	var moved bool // by this call, not an earlier one
	// Over the version the archive's ID was read over: a file handle differs between versions.
	err = k.cfg.Gate.Do(export.WithVersion(ctx, rec.Version), v.Server, v.Share, k.cfg.Timeout, func(ctx context.Context, fsys export.FS) (err error) {
		moved, err = moveArchive(ctx, fsys, v, rec)
		return err
	})
	if err != nil {
		return volume.FinalAnswer(err)
	}
	if err := k.cfg.Records.Delete(ctx, rec.PV); err != nil {
		return err // the retry finds the directory moved and deletes the record
	}
	if moved {
		k.cfg.Recorder.Eventf(v.Claim, v1.EventTypeNormal, ReasonArchiveRestored, "archive %s of claim %s (PV %s, archived %s) is this claim's directory %s on %s:%s",
			rec.Archive, rec.Claim, rec.PV, rec.ArchivedAt.UTC().Format("2006-01-02T15:04:05Z"), v.Dir, v.Server, v.Share)
		klog.FromContext(ctx).Info("archive restored", "pvc", klog.KObj(v.Claim), "archive", rec.Archive, "dir", v.Dir, "server", v.Server)
	}
	return nil
}

// moveArchive renames the archive of rec to v's directory and gives it the claim's owner and mode;
// moved is false when an earlier attempt had moved it.
func moveArchive(ctx context.Context, fsys export.FS, v volume.Volume, rec Record) (moved bool, err error) {
	info, err := fsys.Stat(ctx, rec.Archive)
	if errors.Is(err, export.ErrNotExist) {
		if there, serr := fsys.Stat(ctx, v.Dir); serr == nil && there.ID == rec.ID { // moved by an earlier attempt
			return false, setRestoredAttrs(ctx, fsys, v)
		}
		return false, volume.Refuse("archive %s of claim %s/%s is gone from %s:%s", rec.Archive, rec.Namespace, rec.Claim, rec.Server, rec.Share)
	}
	if err != nil {
		return false, fmt.Errorf("look at archive %s: %w%s", rec.Archive, err, volume.Hint(err))
	}
	if !info.IsDir || info.ID != rec.ID {
		return false, volume.Refuse("what is at %s on %s:%s is not the archive of claim %s/%s that was recorded; it is left alone", rec.Archive, rec.Server, rec.Share, rec.Namespace, rec.Claim)
	}
	if parent := path.Dir(v.Dir); parent != "." {
		if err := fsys.MkdirAll(ctx, parent, v.ParentAttrs); err != nil {
			return false, fmt.Errorf("create the parent directories of %s: %w%s", v.Dir, err, volume.Hint(err))
		}
	}
	if err := fsys.Rename(ctx, rec.Archive, v.Dir); err != nil {
		if errors.Is(err, export.ErrExist) {
			return false, volume.Refuse("directory %s on %s:%s already exists; the archive %s is left where it is", v.Dir, v.Server, v.Share, rec.Archive)
		}
		return false, fmt.Errorf("move archive %s to %s: %w%s", rec.Archive, v.Dir, err, volume.Hint(err))
	}
	return true, setRestoredAttrs(ctx, fsys, v)
}

// setRestoredAttrs gives the restored directory the claim's owner and mode, whatever the archive's
// were: the claim's class decides them.
func setRestoredAttrs(ctx context.Context, fsys export.FS, v volume.Volume) error {
	if err := fsys.SetAttrs(ctx, v.Dir, v.Attrs); err != nil {
		return fmt.Errorf("set owner %d:%d and mode %s on the restored %s: %w%s", v.Attrs.UID, v.Attrs.GID, v.Attrs.Mode, v.Dir, err, volume.Hint(err))
	}
	return nil
}
