package provisioner

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/archive"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/clone"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/placement"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/usage"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// Content is where a new volume's directory and what it holds come from: an empty directory, a
// copy of another claim's volume, a recorded archive. contentFor chooses one per claim; a new
// source is one more case there and a type of its own.
type Content interface {
	// Fill puts v's directory in place on its export, its path reserved for it. nil: the
	// directory is there and its PV can be made. A *controller.IgnoredError says the work goes
	// on in the background (the claim comes back when it ends) and keeps the path reserved;
	// *volume.Refusal is final; *export.OpenError means nothing was done.
	Fill(ctx context.Context, v volume.Volume) error
}

// contentFor chooses the content of v's directory from its claim: a clone (a PersistentVolumeClaim
// as data source), a restore (the restore-from annotation), or an empty directory.
func (p *Provisioner) contentFor(ctx context.Context, v volume.Volume) (Content, error) {
	isClone, isRestore := clone.Wanted(v.Claim), archive.Wanted(v.Claim)
	switch {
	case isClone && isRestore:
		return nil, volume.Refuse("the claim asks both to restore an archive (annotation %s) and to be a clone (data source); remove one", archive.AnnRestoreFrom)
	case isClone:
		return p.cfg.Clones.For(v)
	case isRestore:
		return p.cfg.Archives.RestoreFor(ctx, v.Claim)
	}
	return p.empty, nil
}

// emptyDirectory is the content of a claim that asks for nothing else: a new, empty directory
// (after the capacity check, when the class asks for one), or the directory already at its path
// when the placement rules allow it.
type emptyDirectory struct {
	gate     *export.Gate
	timeout  time.Duration
	recorder record.EventRecorder
}

func (e emptyDirectory) Fill(ctx context.Context, v volume.Volume) error {
	var reused bool
	err := e.gate.Do(ctx, v.Server, v.Share, e.timeout, func(ctx context.Context, fsys export.FS) error {
		if err := usage.CheckCapacity(ctx, fsys, v); err != nil {
			return err
		}
		var err error
		reused, err = placement.MakeDirectory(ctx, fsys, v)
		return err
	})
	if err == nil && reused {
		e.recorder.Event(v.Claim, v1.EventTypeNormal, ReasonDirectoryReused,
			fmt.Sprintf("existing directory %s on %s:%s was given to this claim as it is (StorageClass parameter %s=%s)", v.Dir, v.Server, v.Share, class.ParamReuseDirectory, v.Class.Reuse))
	}
	return volume.FinalAnswer(err)
}
