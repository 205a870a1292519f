// Package provisioner turns PersistentVolumeClaims into directories on NFS exports and
// PersistentVolumes pointing at them, and back. It implements controller.Provisioner of
// sig-storage-lib-external-provisioner: Provision is the claim → directory → PV path (plan the
// volume, choose its content, check its placement, fill it, make the PV) and Delete the way back
// (archive, remove or keep, as the PV records). It calls the lifecycle packages beside it —
// placement, clone, archive, usage — and, through them or directly, volume and export; none of
// them calls it.
package provisioner

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/archive"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/clone"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/pathpattern"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/placement"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// Event reasons the provisioner emits itself (the library emits ProvisioningFailed,
// ProvisioningSucceeded and VolumeFailedDelete).
const (
	ReasonDirectoryKept   = "DirectoryKept"
	ReasonDirectoryReused = "DirectoryReused"
)

// Config is everything a Provisioner needs. Gate, Locator, Archives and Clones are shared with
// the leader's loops (main wires them).
type Config struct {
	Gate     *export.Gate
	Locator  *volume.Locator
	Defaults class.OwnerOverride // NFS_DEFAULT_MODE/UID/GID
	Volumes  volume.Index        // optional: which PVs use a directory
	Recorder record.EventRecorder
	// Timeout bounds the NFS work of one Provision or Delete; RemoveTimeout the removal of one
	// directory tree (onDelete=delete).
	Timeout, RemoveTimeout time.Duration
	Observe                volume.RemovalObserver // optional: told about removals, for metrics
	Archives               *archive.Keeper
	Clones                 *clone.Cloner
	// Namespaces tells namespace UIDs, stamped on the PVs of classes with archiveRetention.
	Namespaces volume.NamespaceUIDs
	// Version is the NFS version NFS_VERSION (--nfs-version) set, "" when it was not set: a
	// version a setting chose is named in the PVs' mountOptions, so that kubelet mounts with it.
	Version export.Version
}

// Provisioner implements controller.Provisioner.
type Provisioner struct {
	cfg   Config
	locks *placement.Locks
	empty emptyDirectory
}

var _ controller.Provisioner = (*Provisioner)(nil)

// New returns a Provisioner. Timeout defaults to 30s, RemoveTimeout to 10m.
func New(cfg Config) *Provisioner {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.RemoveTimeout <= 0 {
		cfg.RemoveTimeout = 10 * time.Minute
	}
	if cfg.Recorder == nil {
		cfg.Recorder = &record.FakeRecorder{}
	}
	if cfg.Archives == nil {
		cfg.Archives = archive.New(archive.Config{Gate: cfg.Gate, Locator: cfg.Locator, Volumes: cfg.Volumes, Recorder: cfg.Recorder})
	}
	if cfg.Clones == nil {
		cfg.Clones = clone.New(clone.Config{Gate: cfg.Gate, Locator: cfg.Locator, Volumes: cfg.Volumes, Recorder: cfg.Recorder})
	}
	p := &Provisioner{cfg: cfg, locks: placement.NewLocks()}
	p.empty = emptyDirectory{gate: cfg.Gate, timeout: cfg.Timeout, recorder: cfg.Recorder}
	return p
}

// Provision creates the claim's directory and returns its PV: plan where it goes and whose it is,
// choose what it holds, check where it may be, reserve its path, fill it, make the PV. Every
// error message says what the user should change; the library turns it into a ProvisioningFailed
// Event on the claim.
func (p *Provisioner) Provision(ctx context.Context, opts controller.ProvisionOptions) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	v, err := p.plan(opts)
	if err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	ctx = export.WithVersion(ctx, v.Class.Version)
	content, err := p.contentFor(ctx, v)
	if err != nil {
		return nil, stateBefore(err), err
	}
	if err := placement.Check(p.cfg.Volumes, v); err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	done, err := p.locks.BeginProvision(v.Server, path.Join(v.Share, v.Dir), opts.PVName)
	if err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	if err := content.Fill(ctx, v); err != nil {
		state, reserved := stateAfter(err)
		done(reserved)
		return nil, state, err
	}
	done(true) // until the PV is seen
	pv, err := p.volumeFor(ctx, opts, v)
	if err != nil {
		return nil, controller.ProvisioningInBackground, err // the directory is made; the retry finds it
	}
	klog.FromContext(ctx).V(2).Info("provisioned", "pvc", klog.KObj(v.Claim), "pv", pv.Name, "server", v.Server, "path", pv.Spec.NFS.Path)
	return pv, controller.ProvisioningFinished, nil
}

// stateBefore is what the library makes of an error before anything was done on an export: a
// refusal is final; anything else (the API server away) leaves the claim as it was.
func stateBefore(err error) controller.ProvisioningState {
	var refused *volume.Refusal
	if errors.As(err, &refused) {
		return controller.ProvisioningFinished
	}
	return controller.ProvisioningNoChange
}

// stateAfter is what the library makes of a content's error, and whether the claim's path stays
// reserved: nothing done (the export could not be reached) leaves the claim as it was; a refusal
// (the content's final word, see volume.FinalAnswer) ends the attempt; work going on in the
// background (a copy: the library's IgnoredError, no Event) keeps the path reserved for it;
// anything else may have reached the server and is retried.
func stateAfter(err error) (state controller.ProvisioningState, reserved bool) {
	var unreached *export.OpenError
	var refused *volume.Refusal
	switch {
	case errors.As(err, &unreached):
		return controller.ProvisioningNoChange, false
	case errors.As(err, &refused):
		return controller.ProvisioningFinished, false
	}
	_, pending := err.(*controller.IgnoredError)
	return controller.ProvisioningInBackground, pending
}

// plan reads what the claim and its class ask for: where the directory goes and whose it is. Its
// errors are final: they change only when the claim or the class does.
func (p *Provisioner) plan(opts controller.ProvisionOptions) (volume.Volume, error) {
	claim := opts.PVC
	if claim.Spec.Selector != nil {
		return volume.Volume{}, fmt.Errorf("claim has spec.selector, which a dynamically provisioned NFS volume cannot satisfy; remove the selector")
	}
	if err := clone.CheckDataSource(claim); err != nil {
		return volume.Volume{}, err
	}
	var params map[string]string
	if opts.StorageClass != nil {
		params = opts.StorageClass.Parameters
	}
	inClass := func(err error) error { return fmt.Errorf("StorageClass %s: %w", className(opts.StorageClass), err) }
	opt, err := class.Parse(params)
	if err == nil && opts.StorageClass != nil {
		opt, err = opt.WithMountOptions(opts.StorageClass.MountOptions)
	}
	if err != nil {
		return volume.Volume{}, inClass(err)
	}
	if opt.Retention > 0 && !p.cfg.Archives.Recording() {
		return volume.Volume{}, inClass(fmt.Errorf("parameter %q: this provisioner keeps no archive records (run it with a namespace: POD_NAMESPACE); remove the parameter", class.ParamArchiveRetention))
	}
	claimOwner, err := class.ParseClaimOwner(claim.Annotations)
	if err != nil {
		return volume.Volume{}, err
	}
	if err := opt.Claims.Check(claimOwner); err != nil {
		return volume.Volume{}, inClass(err)
	}
	dir, err := pathpattern.Expand(opt.PathPattern, claim, opts.PVName)
	if err != nil {
		return volume.Volume{}, inClass(err)
	}
	server, share := p.cfg.Locator.Target(opt)
	if server == "" || share == "" {
		return volume.Volume{}, fmt.Errorf("no NFS server or export path: set NFS_SERVER and NFS_PATH on the provisioner, or parameters %q and %q on StorageClass %s",
			class.ParamServer, class.ParamShare, className(opts.StorageClass))
	}
	return volume.Volume{Claim: claim, PV: opts.PVName, Class: opt, Server: server, Share: share, Dir: dir,
		Attrs:       class.ResolveOwner(claimOwner, opt.Owner, p.cfg.Defaults),
		ParentAttrs: class.ResolveOwner(opt.Owner, p.cfg.Defaults),
		Own:         pathpattern.ClaimOwn(opt.PathPattern) || dir == pathpattern.DefaultDirName(claim.Namespace, claim.Name, opts.PVName),
		Scoped:      pathpattern.NamespaceScoped(opt.PathPattern)}, nil
}

// volumeFor is the PV of v's directory, which exists; with archiveRetention, stamped with the
// namespace's UID, so that its archive is restored only into this very namespace.
func (p *Provisioner) volumeFor(ctx context.Context, opts controller.ProvisionOptions, v volume.Volume) (*v1.PersistentVolume, error) {
	used := p.usedVersion(ctx, v)
	pv := newVolume(opts, v, p.mountVersion(v, opts.StorageClass, used))
	if used != "" {
		pv.Annotations[volume.AnnNFSVersion] = string(used)
	}
	if v.Class.Retention > 0 && p.cfg.Namespaces != nil {
		uid, err := p.cfg.Namespaces.NamespaceUID(ctx, v.Claim.Namespace)
		if err != nil {
			return nil, err
		}
		pv.Annotations[volume.AnnNamespaceUID] = uid
	}
	return pv, nil
}

// usedVersion is the NFS version v's directory was made over ("" for a backend that has none);
// the export's session is open, so asking costs no call.
func (p *Provisioner) usedVersion(ctx context.Context, v volume.Volume) export.Version {
	var used export.Version
	_ = p.cfg.Gate.Do(ctx, v.Server, v.Share, p.cfg.Timeout, func(_ context.Context, fsys export.FS) error {
		used = export.VersionOf(fsys)
		return nil
	})
	return used
}

// mountVersion is the NFS version the PV's mountOptions are to name: used, the one v's directory
// was made over, when a setting chose it (the class's nfsVersion, NFS_VERSION) and the class's
// mountOptions name none. Nothing chose one: "", and the mountOptions are the class's as they
// are, as drop-in users of the anchor have them (kubelet's mount negotiates).
func (p *Provisioner) mountVersion(v volume.Volume, sc *storagev1.StorageClass, used export.Version) export.Version {
	if sc != nil {
		if mv, _ := class.MountVersion(sc.MountOptions); mv != "" {
			return ""
		}
	}
	if v.Class.Version == "" && p.cfg.Version == "" {
		return ""
	}
	return used
}

// newVolume is the PV of v: the class's reclaim policy and mount options (with nfsvers=mv when mv
// is set), the claim's access
// modes, volume mode and request, and where its directory is. A claim that may only read
// (ReadOnlyMany alone) gets a read-only mount: mount option ro, since the kubelet takes a PV's
// read-only-ness from the pod's claim reference and not from nfs.readOnly (measured on the test
// bed's real node: nfs.readOnly alone gives a writable mount); nfs.readOnly says it to readers.
func newVolume(opts controller.ProvisionOptions, v volume.Volume, mv export.Version) *v1.PersistentVolume {
	claim := opts.PVC
	reclaim := v1.PersistentVolumeReclaimDelete
	var mountOptions []string
	if sc := opts.StorageClass; sc != nil {
		if sc.ReclaimPolicy != nil {
			reclaim = *sc.ReclaimPolicy
		}
		mountOptions = sc.MountOptions
	}
	if mv != "" {
		mountOptions = append(slices.Clone(mountOptions), "nfsvers="+string(mv))
	}
	ro := readOnly(claim.Spec.AccessModes)
	if ro {
		mountOptions = append(slices.DeleteFunc(slices.Clone(mountOptions), func(o string) bool { return o == "rw" || o == "ro" }), "ro")
	}
	capacity := claim.Spec.Resources.Requests[v1.ResourceStorage]
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name: opts.PVName,
			Annotations: map[string]string{
				volume.AnnShare:     v.Share,
				volume.AnnDirectory: v.Dir,
				volume.AnnOnDelete:  string(v.Class.OnDelete),
			},
		},
		Spec: v1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: reclaim,
			AccessModes:                   claim.Spec.AccessModes,
			MountOptions:                  mountOptions,
			VolumeMode:                    claim.Spec.VolumeMode,
			Capacity:                      v1.ResourceList{v1.ResourceStorage: capacity},
			PersistentVolumeSource: v1.PersistentVolumeSource{
				NFS: &v1.NFSVolumeSource{Server: v.Server, Path: path.Join(v.Share, v.Dir), ReadOnly: ro},
			},
		},
	}
}

// readOnly reports whether the access modes allow only reading: ReadOnlyMany and nothing else.
func readOnly(modes []v1.PersistentVolumeAccessMode) bool {
	return len(modes) > 0 && !slices.ContainsFunc(modes, func(m v1.PersistentVolumeAccessMode) bool { return m != v1.ReadOnlyMany })
}

func className(sc *storagev1.StorageClass) string {
	if sc == nil {
		return "(none)"
	}
	return fmt.Sprintf("%q", sc.GetName())
}
