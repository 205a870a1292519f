// Package placement decides where a claim's directory may be and when a directory already there
// may be handed to it (the rules below, checked against the PV index and the export), makes an
// empty directory that obeys them, and keeps the path locks that close the window between a
// provision and its PV reaching the informer. It calls volume and export; it knows nothing of
// clones or archives but their reserved names.
package placement

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/pathpattern"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// Where a claim's directory may be, and when a directory already there may
// be handed to it. The rules, in order:
//
//  1. No element of the path is named like an archive (archived-*): a
//     claim is never placed onto or inside one, and no live volume looks
//     like one (an admin cleaning up archives, or a retention, must never
//     meet live data).
//  2. No other PV uses the directory, lies inside it, or contains it. A PV
//     at or above the class's export path that this provisioner did not
//     make is an admin's deliberate shared volume and is not counted; one
//     it made (a tenant's volume that another class's export lies in) is.
//     Volumes provisioned a moment ago, not yet in the informer, count too
//     (pathLocks).
//  3. When the pattern makes paths unique to the claim (the default name,
//     or any pattern with ${.PV.name}), an existing directory can only be
//     this claim's own, made by an earlier attempt whose reply was lost: it
//     is taken, and its owner and mode are made what was asked.
//  4. Otherwise (a pattern without ${.PV.name}, for a claim made again) the
//     class's reuseDirectory decides: "namespace" (the default) takes it
//     only when the pattern begins with ${.PVC.namespace}/, so a claim is
//     only ever handed a directory below its own namespace's; "never"
//     refuses; "any" takes it. A reused directory is taken as it is, and a
//     DirectoryReused Event says so.

// Check applies rules 1 and 2 (no NFS call: the informer's index).
func Check(idx volume.Index, v volume.Volume) error {
	for _, e := range strings.Split(v.Dir, "/") {
		if e == volume.StagingDir {
			return volume.Refuse("directory %s has the element %s, which is kept for copies of clones in progress; change pathPattern, or the namespace, label or annotation it uses", v.Dir, e)
		}
		if volume.IsArchiveName(e) {
			return volume.Refuse("directory %s has the element %s, and names beginning with %q are kept for archives of deleted volumes (a claim is never given one, and a live volume must not look like one); change pathPattern, or the namespace, label or annotation it uses",
				v.Dir, e, volume.ArchivePrefix)
		}
	}
	if idx == nil {
		return nil
	}
	others := func(pvs []*v1.PersistentVolume) []string {
		var names []string
		for _, pv := range pvs {
			if pv.Name != v.PV {
				names = append(names, pv.Name)
			}
		}
		return names
	}
	full := path.Join(v.Share, v.Dir)
	users, err := idx.VolumesUsing(v.Server, full)
	if err != nil {
		return fmt.Errorf("check which PVs use %s: %w", full, err)
	}
	if names := others(users); len(names) > 0 {
		return volume.Refuse("directory %s on %s:%s is already used by PV %s (or it lies inside this directory); a claim never gets another volume's data: change pathPattern, or the labels or annotations it uses, so that this claim gets a path of its own",
			v.Dir, v.Server, v.Share, strings.Join(names, ", "))
	}
	share := path.Clean("/" + v.Share)
	for d := path.Dir(full); ; d = path.Dir(d) {
		above, err := idx.VolumesAt(v.Server, d)
		if err != nil {
			return fmt.Errorf("check which PVs use %s: %w", d, err)
		}
		var counted []*v1.PersistentVolume
		for _, pv := range above {
			// At or above the export path, only volumes this provisioner made count.
			if within(d, share) && d != share || pv.Annotations[volume.AnnDirectory] != "" {
				counted = append(counted, pv)
			}
		}
		if names := others(counted); len(names) > 0 {
			return volume.Refuse("directory %s on %s:%s would lie inside %s, the directory of PV %s, whose users could then read and change this claim's data; change pathPattern so that volumes are not nested",
				v.Dir, v.Server, v.Share, d, strings.Join(names, ", "))
		}
		if d == "/" {
			return nil
		}
	}
}

// MakeDirectory creates v's directory (and its missing parents), or decides by rules 3 and 4
// whether the directory already there may be v's. reused reports a directory taken as it was.
func MakeDirectory(ctx context.Context, fsys export.FS, v volume.Volume) (reused bool, err error) {
	where := fmt.Sprintf("%s on %s:%s (mode %04o, uid %d, gid %d)", v.Dir, v.Server, v.Share, v.Attrs.Mode, v.Attrs.UID, v.Attrs.GID)
	if parent := path.Dir(v.Dir); parent != "." {
		if err := fsys.MkdirAll(ctx, parent, v.ParentAttrs); err != nil {
			return false, fmt.Errorf("create the parent directories of %s: %w%s", where, err, volume.Hint(err))
		}
	}
	// A path only this claim can have is made at once (one round trip); any other is looked at
	// first, so that a directory there before is judged by the reuse rules even when the
	// reply to the Mkdir below is lost and its repeat meets the directory it made.
	var info export.Info
	err = export.ErrNotExist // a path unique to the claim: no look first
	if !v.Own {
		info, err = fsys.Stat(ctx, v.Dir)
	}
	if errors.Is(err, export.ErrNotExist) {
		err = fsys.Mkdir(ctx, v.Dir, v.Attrs)
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, export.ErrExist) {
			return false, fmt.Errorf("create directory %s: %w%s", where, err, volume.Hint(err))
		}
		if !v.Own && errors.Is(err, export.ErrMaybeDone) {
			if made, err := madeByLostMkdir(ctx, fsys, v); made || err != nil {
				return false, err
			}
		}
		info, err = fsys.Stat(ctx, v.Dir)
	}
	if err != nil {
		return false, fmt.Errorf("look at the existing %s: %w%s", where, err, volume.Hint(err))
	}
	if !info.IsDir {
		return false, fmt.Errorf("create directory %s: something that is not a directory is there: %w%s", where, export.ErrNotDir, volume.Hint(export.ErrNotDir))
	}
	switch {
	case v.Own:
		// This claim's own directory from an earlier attempt.
		if info.Mode != v.Attrs.Mode&0o7777 || info.UID != v.Attrs.UID || info.GID != v.Attrs.GID {
			if err := fsys.SetAttrs(ctx, v.Dir, v.Attrs); err != nil {
				return false, fmt.Errorf("directory %s exists from an earlier attempt with mode %04o, uid %d, gid %d; setting what was asked: %w%s",
					where, info.Mode, info.UID, info.GID, err, volume.Hint(err))
			}
		}
		return false, nil
	case v.Class.Reuse == class.ReuseAny:
		return true, nil
	case v.Class.Reuse == class.ReuseNever:
		return false, volume.Refuse("directory %s on %s:%s already exists and StorageClass parameter %s=%s: remove or rename the directory, or change pathPattern",
			v.Dir, v.Server, v.Share, class.ParamReuseDirectory, class.ReuseNever)
	}
	if !v.Scoped {
		return false, volume.Refuse("directory %s on %s:%s already exists, and the class's pathPattern does not begin with %s, so it may belong to another namespace; give the class a pathPattern beginning with %s, or set StorageClass parameter %s=%s if every tenant of this export may share directories",
			v.Dir, v.Server, v.Share, pathpattern.NamespacePrefix, pathpattern.NamespacePrefix, class.ParamReuseDirectory, class.ReuseAny)
	}
	return true, nil
}

// errNotEmpty stops the emptiness check of madeByLostMkdir.
var errNotEmpty = errors.New("not empty")

// madeByLostMkdir decides whether the directory a repeated Mkdir met (its first attempt's reply
// was lost) is the one that attempt made: it was not there a moment before (makeDirectory looked),
// it is empty and owned as asked, and its mode is what was asked but for the setuid, setgid and
// sticky bits a server's MKDIR may drop or inherit — which are then set.
func madeByLostMkdir(ctx context.Context, fsys export.FS, v volume.Volume) (bool, error) {
	info, err := fsys.Stat(ctx, v.Dir)
	if err != nil || !info.IsDir || info.UID != v.Attrs.UID || info.GID != v.Attrs.GID || info.Mode&0o777 != v.Attrs.Mode&0o777 {
		return false, nil
	}
	// An empty directory is walked in at most two listing steps (a page, then its end); the
	// walk is stopped at a third, so a directory someone filled with a million entries costs
	// three calls, not a scan.
	steps := 0
	fewSteps := func(context.Context) error {
		if steps++; steps > 2 {
			return errNotEmpty
		}
		return nil
	}
	if u, err := fsys.Usage(ctx, v.Dir, fewSteps); err != nil || u.Inodes != 1 {
		return false, nil
	}
	if info.Mode != v.Attrs.Mode {
		if err := fsys.SetAttrs(ctx, v.Dir, v.Attrs); err != nil {
			return false, fmt.Errorf("set mode %s on %s, made by an attempt whose reply was lost: %w%s", v.Attrs.Mode, v.Dir, err, volume.Hint(err))
		}
	}
	klog.FromContext(ctx).Info("directory made by an MKDIR whose reply was lost", "dir", v.Dir, "server", v.Server, "pv", v.PV)
	return true, nil
}
