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

// AnnRestoreFrom on a new claim names an archive to take over instead of an empty directory: the
// name of the deleted claim it came from (the most recent archive of that claim), or the
// archive's directory name (archived-…). Only recorded archives (classes with archiveRetention)
// of a claim of the same namespace can be named.
const AnnRestoreFrom = "nfs-subdir-provisioner.io/restore-from"

// ReasonArchiveRestored is the Event on a claim that took over an archive.
const ReasonArchiveRestored = "ArchiveRestored"

// restoreSource finds the archive record a claim asks to restore, nil when it asks for none. Its
// errors are final refusals that say what to change.
func (p *Provisioner) restoreSource(ctx context.Context, claim *v1.PersistentVolumeClaim) (*ArchiveRecord, error) {
	want := strings.TrimSpace(claim.Annotations[AnnRestoreFrom])
	if want == "" {
		return nil, nil
	}
	refuse := func(format string, args ...any) error {
		return refusePlacement("annotation %s=%q: %s; remove the annotation for an empty volume", AnnRestoreFrom, want, fmt.Sprintf(format, args...))
	}
	if p.cfg.Archives == nil || p.cfg.Namespaces == nil {
		return nil, refuse("this provisioner keeps no archive records")
	}
	nsUID, err := p.cfg.Namespaces.NamespaceUID(ctx, claim.Namespace)
	if err != nil {
		return nil, err // retried
	}
	var found *ArchiveRecord
	records, err := p.cfg.Archives.List(ctx)
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
		return nil, refuse("archive %s is being removed (past its class's %s)", path.Base(found.Archive), ParamArchiveRetention)
	}
	if found != nil {
		// One past its class's retention is the sweeper's: restoring it could race the purge.
		if retention := p.retentionOf(found.Class); retention > 0 && time.Now().After(found.ArchivedAt.Add(retention)) {
			return nil, refuse("archive %s is past its class's %s=%s and is being removed", path.Base(found.Archive), ParamArchiveRetention, retention)
		}
	}
	if found == nil {
		return nil, refuse("no recorded archive of a claim of namespace %s has that name (only archives of classes with %s are recorded; one restored already is gone from the records)", claim.Namespace, ParamArchiveRetention)
	}
	return found, nil
}

// restoreArchive moves the archive of rec into place as v's directory, then drops its record.
// The archive must still be the recorded directory (its ID) and on v's export; the move never
// replaces anything at v's path. A retry after the move finds the directory at v's path by its
// ID and finishes.
func (p *Provisioner) restoreArchive(ctx context.Context, fsys export.FS, v claimVolume, rec *ArchiveRecord) error {
	release, ok := p.archiveBusy.take(rec.PV)
	if !ok {
		return fmt.Errorf("archive %s is being purged or restored right now; this is retried", rec.Archive)
	}
	defer release()
	if export.NewTarget(rec.Server, rec.Share) != export.NewTarget(v.server, v.share) {
		return refusePlacement("archive %s is on %s:%s, and this claim's class puts it on %s:%s; restore it with a class of that export",
			rec.Archive, rec.Server, rec.Share, v.server, v.share)
	}
	info, err := fsys.Stat(ctx, rec.Archive)
	if errors.Is(err, export.ErrNotExist) {
		if there, serr := fsys.Stat(ctx, v.dir); serr == nil && there.ID == rec.ID { // moved by an earlier attempt
			if err := fsys.SetAttrs(ctx, v.dir, v.attrs); err != nil {
				return fmt.Errorf("set owner %d:%d and mode %s on the restored %s: %w%s", v.attrs.UID, v.attrs.GID, v.attrs.Mode, v.dir, err, hint(err))
			}
			return p.cfg.Archives.Delete(ctx, rec.PV)
		}
		return refusePlacement("archive %s of claim %s/%s is gone from %s:%s", rec.Archive, rec.Namespace, rec.Claim, rec.Server, rec.Share)
	}
	if err != nil {
		return fmt.Errorf("look at archive %s: %w%s", rec.Archive, err, hint(err))
	}
	if !info.IsDir || info.ID != rec.ID {
		return refusePlacement("what is at %s on %s:%s is not the archive of claim %s/%s that was recorded; it is left alone", rec.Archive, rec.Server, rec.Share, rec.Namespace, rec.Claim)
	}
	if users := p.archiveUsers(*rec); len(users) > 0 {
		return refusePlacement("archive %s on %s:%s is used by PV %s; it is left where it is", rec.Archive, rec.Server, rec.Share, strings.Join(users, ", "))
	}
	if parent := path.Dir(v.dir); parent != "." {
		if err := fsys.MkdirAll(ctx, parent, v.parentAttrs); err != nil {
			return fmt.Errorf("create the parent directories of %s: %w%s", v.dir, err, hint(err))
		}
	}
	if err := fsys.Rename(ctx, rec.Archive, v.dir); err != nil {
		if errors.Is(err, export.ErrExist) {
			return refusePlacement("directory %s on %s:%s already exists; the archive %s is left where it is", v.dir, v.server, v.share, rec.Archive)
		}
		return fmt.Errorf("move archive %s to %s: %w%s", rec.Archive, v.dir, err, hint(err))
	}
	// The claim's class decides the directory's owner and mode, whatever the archive's were.
	if err := fsys.SetAttrs(ctx, v.dir, v.attrs); err != nil {
		return fmt.Errorf("set owner %d:%d and mode %s on the restored %s: %w%s", v.attrs.UID, v.attrs.GID, v.attrs.Mode, v.dir, err, hint(err))
	}
	if err := p.cfg.Archives.Delete(ctx, rec.PV); err != nil {
		return err // the retry finds the directory moved and deletes the record
	}
	p.cfg.Recorder.Eventf(v.claim, v1.EventTypeNormal, ReasonArchiveRestored, "archive %s of claim %s (PV %s, archived %s) is this claim's directory %s on %s:%s",
		rec.Archive, rec.Claim, rec.PV, rec.ArchivedAt.UTC().Format("2006-01-02T15:04:05Z"), v.dir, v.server, v.share)
	klog.FromContext(ctx).Info("archive restored", "pvc", klog.KObj(v.claim), "archive", rec.Archive, "dir", v.dir, "server", v.server)
	return nil
}
