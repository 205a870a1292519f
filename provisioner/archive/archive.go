// Package archive owns what happens to a volume's directory archived on delete: the rename to
// the first free archived-* name, the records kept of archives of classes with archiveRetention
// (ConfigMaps in the provisioner's namespace, where no tenant writes), the sweeper that purges
// them past their retention, and the restore of a recorded archive into a new claim of its
// namespace. It calls volume, export and the API server (records, namespaces, Events); the
// provisioner calls it from Delete and when it chooses a claim's content.
package archive

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// Observer is told what archive sweeps and purges did, for metrics.
type Observer interface {
	volume.RemovalObserver
	// ArchivesSwept gets, after each archive sweep, the recorded archives left by class and how
	// many it purged by class.
	ArchivesSwept(recorded, purged map[string]int)
}

// Config is what a Keeper needs.
type Config struct {
	Gate    *export.Gate
	Locator *volume.Locator
	Volumes volume.Index
	// Records keeps the records of archives of classes with archiveRetention; nil: archives are
	// kept for good (the parameter is refused).
	Records Records
	// Namespaces tells namespace UIDs, so that an archive is restored only into the namespace it
	// came from, not a later one of the same name. Needed for restore.
	Namespaces volume.NamespaceUIDs
	Recorder   record.EventRecorder
	Observe    Observer // optional
	// Timeout bounds the NFS work of one restore; RemoveTimeout one purge.
	Timeout, RemoveTimeout time.Duration
	// DryRun makes the sweeper say what it would remove (ArchivePurgeDue Events) and remove
	// nothing.
	DryRun bool
}

// Keeper archives directories and keeps, sweeps and restores the recorded archives.
type Keeper struct {
	cfg  Config
	busy busySet // archives being purged or restored
}

// New returns a Keeper.
func New(cfg Config) *Keeper {
	if cfg.Recorder == nil {
		cfg.Recorder = &record.FakeRecorder{}
	}
	return &Keeper{cfg: cfg}
}

// Recording reports whether archives can be recorded (and so classes may have archiveRetention).
func (k *Keeper) Recording() bool { return k.cfg.Records != nil }

// Archive renames the directory of pv at loc to its first free ArchiveName, recorded first when
// its class has archiveRetention now. A directory already gone is success (an earlier attempt
// archived it, or a user removed it): the returned name is then "".
func (k *Keeper) Archive(ctx context.Context, fsys export.FS, pv *v1.PersistentVolume, loc volume.Location) (string, error) {
	if k.retention(pv.Spec.StorageClassName) > 0 {
		return k.archiveRecorded(ctx, fsys, pv, loc)
	}
	return rename(ctx, fsys, loc.Dir)
}

// rename renames dir to the first free ArchiveName.
func rename(ctx context.Context, fsys export.FS, dir string) (string, error) {
	for n := 0; n < volume.MaxArchiveAttempts; n++ {
		target := volume.ArchiveName(dir, n)
		err := fsys.Rename(ctx, dir, target)
		switch {
		case err == nil:
			return target, nil
		case errors.Is(err, export.ErrExist):
			continue
		case errors.Is(err, export.ErrNotExist):
			return "", nil
		default:
			return "", err
		}
	}
	return "", fmt.Errorf("%d archive names for it are taken; remove old archived-* directories", volume.MaxArchiveAttempts)
}

// retention is the archiveRetention of the class now, 0 when it has none (or the class is gone,
// or archives cannot be recorded).
func (k *Keeper) retention(className string) time.Duration {
	sc := k.cfg.Locator.Class(className)
	if sc == nil || k.cfg.Records == nil {
		return 0
	}
	opts, err := class.Parse(sc.Parameters)
	if err != nil {
		return 0
	}
	return opts.Retention
}
