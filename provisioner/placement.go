package provisioner

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
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

// claimVolume is one claim's directory-to-be.
type claimVolume struct {
	claim              *v1.PersistentVolumeClaim
	pv                 string
	server, share, dir string
	attrs              export.DirAttrs // of the claim's directory
	parentAttrs        export.DirAttrs // of parents it creates: the class's
	reuse              Reuse
	own                bool // the pattern makes paths unique to the claim
	scoped             bool // the pattern begins with the namespace
}

// placementError is a refusal of where a claim's directory would be.
type placementError struct{ msg string }

func (e *placementError) Error() string { return e.msg }

// Is makes a refusal an answer for the server gate: it follows what the
// server said about the path.
func (e *placementError) Is(target error) bool { return target == export.ErrServerReply }

func refusePlacement(format string, args ...any) error {
	return &placementError{msg: fmt.Sprintf(format, args...)}
}

func isArchiveName(name string) bool { return strings.HasPrefix(name, archivePrefix) }

// checkPlacement applies rules 1 and 2 (no NFS call: the informer's index).
func (p *Provisioner) checkPlacement(v claimVolume) error {
	for _, e := range strings.Split(v.dir, "/") {
		if e == StagingDir {
			return refusePlacement("directory %s has the element %s, which is kept for copies of clones in progress; change pathPattern, or the namespace, label or annotation it uses", v.dir, e)
		}
		if isArchiveName(e) {
			return refusePlacement("directory %s has the element %s, and names beginning with %q are kept for archives of deleted volumes (a claim is never given one, and a live volume must not look like one); change pathPattern, or the namespace, label or annotation it uses",
				v.dir, e, archivePrefix)
		}
	}
	if p.cfg.Volumes == nil {
		return nil
	}
	others := func(pvs []*v1.PersistentVolume) []string {
		var names []string
		for _, pv := range pvs {
			if pv.Name != v.pv {
				names = append(names, pv.Name)
			}
		}
		return names
	}
	full := path.Join(v.share, v.dir)
	users, err := p.cfg.Volumes.VolumesUsing(v.server, full)
	if err != nil {
		return fmt.Errorf("check which PVs use %s: %w", full, err)
	}
	if names := others(users); len(names) > 0 {
		return refusePlacement("directory %s on %s:%s is already used by PV %s (or it lies inside this directory); a claim never gets another volume's data: change pathPattern, or the labels or annotations it uses, so that this claim gets a path of its own",
			v.dir, v.server, v.share, strings.Join(names, ", "))
	}
	share := path.Clean("/" + v.share)
	for d := path.Dir(full); ; d = path.Dir(d) {
		above, err := p.cfg.Volumes.VolumesAt(v.server, d)
		if err != nil {
			return fmt.Errorf("check which PVs use %s: %w", d, err)
		}
		var counted []*v1.PersistentVolume
		for _, pv := range above {
			// At or above the export path, only volumes this provisioner made count.
			if within(d, share) && d != share || pv.Annotations[AnnDirectory] != "" {
				counted = append(counted, pv)
			}
		}
		if names := others(counted); len(names) > 0 {
			return refusePlacement("directory %s on %s:%s would lie inside %s, the directory of PV %s, whose users could then read and change this claim's data; change pathPattern so that volumes are not nested",
				v.dir, v.server, v.share, d, strings.Join(names, ", "))
		}
		if d == "/" {
			return nil
		}
	}
}

// makeDirectory creates v's directory (and its missing parents), or
// decides by rules 3-5 whether the directory already there may be v's.
// reused reports a directory taken as it was.
func (p *Provisioner) makeDirectory(ctx context.Context, fsys export.FS, v claimVolume) (reused bool, err error) {
	where := fmt.Sprintf("%s on %s:%s (mode %04o, uid %d, gid %d)", v.dir, v.server, v.share, v.attrs.Mode, v.attrs.UID, v.attrs.GID)
	if parent := path.Dir(v.dir); parent != "." {
		if err := fsys.MkdirAll(ctx, parent, v.parentAttrs); err != nil {
			return false, fmt.Errorf("create the parent directories of %s: %w%s", where, err, hint(err))
		}
	}
	// A path only this claim can have is made at once (one round trip); any other is looked at
	// first, so that a directory there before is judged by the reuse rules even when the
	// reply to the Mkdir below is lost and its repeat meets the directory it made.
	var info export.Info
	err = export.ErrNotExist // a path unique to the claim: no look first
	if !v.own {
		info, err = fsys.Stat(ctx, v.dir)
	}
	if errors.Is(err, export.ErrNotExist) {
		err = fsys.Mkdir(ctx, v.dir, v.attrs)
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, export.ErrExist) {
			return false, fmt.Errorf("create directory %s: %w%s", where, err, hint(err))
		}
		if !v.own && errors.Is(err, export.ErrMaybeDone) {
			if made, err := p.madeByLostMkdir(ctx, fsys, v); made || err != nil {
				return false, err
			}
		}
		info, err = fsys.Stat(ctx, v.dir)
	}
	if err != nil {
		return false, fmt.Errorf("look at the existing %s: %w%s", where, err, hint(err))
	}
	if !info.IsDir {
		return false, fmt.Errorf("create directory %s: something that is not a directory is there: %w%s", where, export.ErrNotDir, hint(export.ErrNotDir))
	}
	switch {
	case v.own:
		// This claim's own directory from an earlier attempt.
		if info.Mode != v.attrs.Mode&0o7777 || info.UID != v.attrs.UID || info.GID != v.attrs.GID {
			if err := fsys.SetAttrs(ctx, v.dir, v.attrs); err != nil {
				return false, fmt.Errorf("directory %s exists from an earlier attempt with mode %04o, uid %d, gid %d; setting what was asked: %w%s",
					where, info.Mode, info.UID, info.GID, err, hint(err))
			}
		}
		return false, nil
	case v.reuse == ReuseAny:
		return true, nil
	case v.reuse == ReuseNever:
		return false, refusePlacement("directory %s on %s:%s already exists and StorageClass parameter %s=%s: remove or rename the directory, or change pathPattern",
			v.dir, v.server, v.share, ParamReuseDirectory, ReuseNever)
	}
	if !v.scoped {
		return false, refusePlacement("directory %s on %s:%s already exists, and the class's pathPattern does not begin with %s, so it may belong to another namespace; give the class a pathPattern beginning with %s, or set StorageClass parameter %s=%s if every tenant of this export may share directories",
			v.dir, v.server, v.share, namespacePrefix, namespacePrefix, ParamReuseDirectory, ReuseAny)
	}
	return true, nil
}

// errNotEmpty stops the emptiness check of madeByLostMkdir.
var errNotEmpty = errors.New("not empty")

// madeByLostMkdir decides whether the directory a repeated Mkdir met (its first attempt's reply
// was lost) is the one that attempt made: it was not there a moment before (makeDirectory looked),
// it is empty and owned as asked, and its mode is what was asked but for the setuid, setgid and
// sticky bits a server's MKDIR may drop or inherit — which are then set.
func (p *Provisioner) madeByLostMkdir(ctx context.Context, fsys export.FS, v claimVolume) (bool, error) {
	info, err := fsys.Stat(ctx, v.dir)
	if err != nil || !info.IsDir || info.UID != v.attrs.UID || info.GID != v.attrs.GID || info.Mode&0o777 != v.attrs.Mode&0o777 {
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
	if u, err := fsys.Usage(ctx, v.dir, fewSteps); err != nil || u.Inodes != 1 {
		return false, nil
	}
	if info.Mode != v.attrs.Mode {
		if err := fsys.SetAttrs(ctx, v.dir, v.attrs); err != nil {
			return false, fmt.Errorf("set mode %s on %s, made by an attempt whose reply was lost: %w%s", v.attrs.Mode, v.dir, err, hint(err))
		}
	}
	klog.FromContext(ctx).Info("directory made by an MKDIR whose reply was lost", "dir", v.dir, "server", v.server, "pv", v.pv)
	return true, nil
}
