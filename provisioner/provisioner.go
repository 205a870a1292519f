// Package provisioner turns PersistentVolumeClaims into directories on NFS
// exports and PersistentVolumes pointing at them. It implements
// controller.Provisioner of sig-storage-lib-external-provisioner; the NFS
// side goes through export.FS, so the same logic serves every backend.
package provisioner

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// Annotations recorded on every PV, so that Delete needs nothing but the PV:
// it still works after the StorageClass is deleted or the provisioner's
// default server and path change.
const (
	AnnShare     = "nfs-subdir-provisioner.io/share"
	AnnDirectory = "nfs-subdir-provisioner.io/directory"
	AnnOnDelete  = "nfs-subdir-provisioner.io/on-delete"
	// AnnNamespaceUID is the UID of the claim's namespace when the PV was made (classes with
	// archiveRetention): its archive is restored only into that very namespace.
	AnnNamespaceUID = "nfs-subdir-provisioner.io/namespace-uid"
)

// Event reasons the provisioner emits itself (the library emits
// ProvisioningFailed, ProvisioningSucceeded and VolumeFailedDelete).
const (
	ReasonDirectoryKept     = "DirectoryKept"
	ReasonDirectoryReused   = "DirectoryReused"
	ReasonRemovingDirectory = "RemovingDirectory"
)

// Config is everything a Provisioner needs.
type Config struct {
	Name          string        // PROVISIONER_NAME: which StorageClasses are ours
	DefaultServer string        // NFS_SERVER
	DefaultShare  string        // NFS_PATH
	Defaults      OwnerOverride // NFS_DEFAULT_MODE/UID/GID
	Opener        export.Opener
	Volumes       VolumeIndex
	Classes       storagelisters.StorageClassLister // optional: policy of PVs made by the anchor project
	Recorder      record.EventRecorder
	Timeout       time.Duration // bound on the NFS work of one Provision or Delete
	RemoveTimeout time.Duration // bound on removing one directory tree (onDelete=delete); default 10m
	Observe       Observer      // optional: told about removals, for metrics
	// Archives keeps the records of archives of classes with archiveRetention; nil: archives
	// are kept for good (the parameter is refused).
	Archives ArchiveRecords
	// SweepDryRun makes the archive sweeper say what it would remove (ArchivePurgeDue Events)
	// and remove nothing.
	SweepDryRun bool
	// Namespaces tells namespace UIDs, so that an archive is restored only into the namespace
	// it came from, not a later one of the same name. Needed for restore.
	Namespaces NamespaceUIDs
	// Claims reads claims and PVs and protects clone sources. Needed for clones.
	Claims Claims
	// Background is the context clones run under (they outlive the Provision that starts
	// them); its end stops them. Default: context.Background().
	Background context.Context
	// Clones is how many copies run at once (default 2; each is itself parallel).
	Clones int
	// Namespace is the provisioner's own (POD_NAMESPACE): with Name, it names this install's
	// staging directory for clones. Optional.
	Namespace string
}

// Observer is told what Deletes removed and how full exports are, for
// metrics.
type Observer interface {
	RemovedEntries(server string, files, dirs uint64)
	ExportCapacity(server, share string, c export.Capacity)
	// VolumeUsage gets every volume's usage after a scan (replacing the
	// last scan's), how long the scan took and how many volumes failed.
	VolumeUsage(volumes []VolumeUsage, took time.Duration, failed int)
	// ArchivesSwept gets, after each archive sweep, the recorded archives left by class and
	// how many it purged by class.
	ArchivesSwept(recorded, purged map[string]int)
	// ClonesRunning is told when a clone's copy starts (+1) and ends (-1); CloneCopied the
	// bytes it copied to server since it was last told; CloneEnded how long a copy took.
	ClonesRunning(delta int)
	CloneCopied(server string, bytes uint64)
	CloneEnded(took time.Duration, err error)
}

// Provisioner implements controller.Provisioner.
type Provisioner struct {
	cfg         Config
	gate        *serverGate
	locks       *pathLocks
	archiveBusy busySet // archives being purged or restored
	clones      *cloneJobs
}

var _ controller.Provisioner = (*Provisioner)(nil)

// New returns a Provisioner. Timeout defaults to 30s.
func New(cfg Config) *Provisioner {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Recorder == nil {
		cfg.Recorder = &record.FakeRecorder{}
	}
	if cfg.RemoveTimeout <= 0 {
		cfg.RemoveTimeout = 10 * time.Minute
	}
	if cfg.Background == nil {
		cfg.Background = context.Background()
	}
	if cfg.Clones <= 0 {
		cfg.Clones = 2
	}
	return &Provisioner{cfg: cfg, gate: newServerGate(), locks: newPathLocks(), clones: newCloneJobs(cfg.Clones)}
}

// Provision creates the claim's directory and returns its PV. Every error
// message says what the user should change; the library turns it into a
// ProvisioningFailed Event on the claim.
func (p *Provisioner) Provision(ctx context.Context, opts controller.ProvisionOptions) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	v, class, err := p.planVolume(opts)
	if err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	if err := p.checkPlacement(v); err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	done, err := p.locks.beginProvision(v.server, path.Join(v.share, v.dir), opts.PVName)
	if err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	made := false
	defer func() { done(made) }()
	if isClone(v.claim) {
		if v.claim.Annotations[AnnRestoreFrom] != "" {
			return nil, controller.ProvisioningFinished, fmt.Errorf("the claim asks both to restore an archive (annotation %s) and to be a clone (data source); remove one", AnnRestoreFrom)
		}
		pv, state, err := p.provisionClone(ctx, opts, v, class)
		var refused *placementError
		made = !errors.As(err, &refused) // a copy runs or is in place: keep the path reserved
		return pv, state, err
	}
	source, err := p.restoreSource(ctx, v.claim)
	if err != nil {
		var refused *placementError
		if errors.As(err, &refused) {
			return nil, controller.ProvisioningFinished, err
		}
		return nil, controller.ProvisioningNoChange, err // the records could not be read: retried
	}
	reused, state, err := p.createDirectory(ctx, v, class, source)
	if err != nil {
		return nil, state, err
	}
	made = true
	if reused {
		p.cfg.Recorder.Eventf(v.claim, v1.EventTypeNormal, ReasonDirectoryReused,
			"existing directory %s on %s:%s was given to this claim as it is (StorageClass parameter %s=%s)", v.dir, v.server, v.share, ParamReuseDirectory, class.Reuse)
	}
	pv, err := p.volumeFor(ctx, opts, v, class)
	if err != nil {
		return nil, controller.ProvisioningInBackground, err // the directory is made; the retry finds it
	}
	klog.FromContext(ctx).V(2).Info("provisioned", "pvc", klog.KObj(v.claim), "pv", pv.Name, "server", v.server, "path", pv.Spec.NFS.Path, "reused", reused)
	return pv, controller.ProvisioningFinished, nil
}

// planVolume reads what the claim and its class ask for: where the directory goes and whose it
// is. Its errors are final: they change only when the claim or the class does.
func (p *Provisioner) planVolume(opts controller.ProvisionOptions) (claimVolume, ClassOptions, error) {
	claim := opts.PVC
	if claim.Spec.Selector != nil {
		return claimVolume{}, ClassOptions{}, fmt.Errorf("claim has spec.selector, which a dynamically provisioned NFS volume cannot satisfy; remove the selector")
	}
	if err := checkDataSource(claim); err != nil {
		return claimVolume{}, ClassOptions{}, err
	}
	var params map[string]string
	if opts.StorageClass != nil {
		params = opts.StorageClass.Parameters
	}
	inClass := func(err error) error { return fmt.Errorf("StorageClass %s: %w", className(opts.StorageClass), err) }
	class, err := ParseClassOptions(params)
	if err != nil {
		return claimVolume{}, class, inClass(err)
	}
	if class.Retention > 0 && p.cfg.Archives == nil {
		return claimVolume{}, class, inClass(fmt.Errorf("parameter %q: this provisioner keeps no archive records (run it with a namespace: POD_NAMESPACE); remove the parameter", ParamArchiveRetention))
	}
	claimOwner, err := ParseClaimOwner(claim.Annotations)
	if err != nil {
		return claimVolume{}, class, err
	}
	if err := class.Claims.Check(claimOwner); err != nil {
		return claimVolume{}, class, inClass(err)
	}
	dir, err := VolumePath(class.PathPattern, claim, opts.PVName)
	if err != nil {
		return claimVolume{}, class, inClass(err)
	}
	server, share := p.target(class)
	if server == "" || share == "" {
		return claimVolume{}, class, fmt.Errorf("no NFS server or export path: set NFS_SERVER and NFS_PATH on the provisioner, or parameters %q and %q on StorageClass %s",
			ParamServer, ParamShare, className(opts.StorageClass))
	}
	return claimVolume{claim: claim, pv: opts.PVName, server: server, share: share, dir: dir,
		attrs:       ResolveOwner(claimOwner, class.Owner, p.cfg.Defaults),
		parentAttrs: ResolveOwner(class.Owner, p.cfg.Defaults), // shared parents are the class's, not one claim's
		reuse:       class.Reuse,
		own:         PatternIsClaimOwn(class.PathPattern) || dir == DefaultDirName(claim.Namespace, claim.Name, opts.PVName),
		scoped:      PatternIsNamespaceScoped(class.PathPattern)}, class, nil
}

// createDirectory makes the volume's directory on its export (after the capacity check, when the
// class asks for one), or moves the archive restore names into place, and says, on failure, what the library should make of it: nothing done
// (the export could not be reached), final (a refusal that only a change of the claim or class
// mends), or possibly done (an MKDIR that may have reached the server).
func (p *Provisioner) createDirectory(ctx context.Context, v claimVolume, class ClassOptions, restore *ArchiveRecord) (reused bool, state controller.ProvisioningState, err error) {
	err = p.onExport(ctx, v.server, v.share, p.cfg.Timeout, func(ctx context.Context, fsys export.FS) error {
		if restore != nil {
			return p.restoreArchive(ctx, fsys, v, restore)
		}
		if class.Capacity.Enabled {
			if err := checkCapacity(ctx, fsys, v, class.Capacity, v.claim.Spec.Resources.Requests[v1.ResourceStorage]); err != nil {
				return err
			}
		}
		var err error
		reused, err = p.makeDirectory(ctx, fsys, v)
		return err
	})
	var openErr *exportOpenError
	var refused *placementError
	switch {
	case err == nil:
		return reused, controller.ProvisioningFinished, nil
	case errors.As(err, &openErr):
		return false, controller.ProvisioningNoChange, err // whatever state the claim was in still holds
	case errors.As(err, &refused) || errors.Is(err, export.ErrPermission) || errors.Is(err, export.ErrNotDir) || errors.Is(err, export.ErrInvalidPath):
		return false, controller.ProvisioningFinished, err
	}
	return false, controller.ProvisioningInBackground, err
}

// exportOpenError marks a failure to reach an export: nothing was done.
type exportOpenError struct{ err error }

func (e *exportOpenError) Error() string { return e.err.Error() }
func (e *exportOpenError) Unwrap() error { return e.err }

// onExport runs op on the export server:share within timeout, through the
// server gate: a server that stopped answering turns op away at once,
// and op's outcome tells the gate whether the server answered. A failure
// to open the export is an *exportOpenError.
func (p *Provisioner) onExport(ctx context.Context, server, share string, timeout time.Duration, op func(context.Context, export.FS) error) error {
	probe, err := p.gate.enter(server)
	if err != nil {
		return &exportOpenError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fsys, err := p.cfg.Opener.Open(ctx, server, share)
	if err != nil {
		p.gate.leave(server, probe, err)
		return &exportOpenError{fmt.Errorf("open export %s:%s: %w%s", server, share, err, openHint(err))}
	}
	err = op(ctx, fsys)
	p.gate.leave(server, probe, err)
	return err
}

// volumeFor is the PV of v's directory, which exists; with archiveRetention, stamped with the
// namespace's UID, so that its archive is restored only into this very namespace.
func (p *Provisioner) volumeFor(ctx context.Context, opts controller.ProvisionOptions, v claimVolume, class ClassOptions) (*v1.PersistentVolume, error) {
	pv := newVolume(opts, v.server, v.share, v.dir, class.OnDelete)
	if class.Retention > 0 && p.cfg.Namespaces != nil {
		uid, err := p.cfg.Namespaces.NamespaceUID(ctx, v.claim.Namespace)
		if err != nil {
			return nil, err
		}
		pv.Annotations[AnnNamespaceUID] = uid
	}
	return pv, nil
}

func (p *Provisioner) target(class ClassOptions) (server, share string) {
	server, share = p.cfg.DefaultServer, p.cfg.DefaultShare
	if class.Server != "" {
		server = class.Server
	}
	if class.Share != "" {
		share = class.Share
	}
	return server, share
}

func newVolume(opts controller.ProvisionOptions, server, share, dir string, onDelete OnDelete) *v1.PersistentVolume {
	claim := opts.PVC
	reclaim := v1.PersistentVolumeReclaimDelete
	var mountOptions []string
	if sc := opts.StorageClass; sc != nil {
		if sc.ReclaimPolicy != nil {
			reclaim = *sc.ReclaimPolicy
		}
		mountOptions = sc.MountOptions
	}
	capacity := claim.Spec.Resources.Requests[v1.ResourceStorage]
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name: opts.PVName,
			Annotations: map[string]string{
				AnnShare:     share,
				AnnDirectory: dir,
				AnnOnDelete:  string(onDelete),
			},
		},
		Spec: v1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: reclaim,
			AccessModes:                   claim.Spec.AccessModes,
			MountOptions:                  mountOptions,
			VolumeMode:                    claim.Spec.VolumeMode,
			Capacity:                      v1.ResourceList{v1.ResourceStorage: capacity},
			PersistentVolumeSource: v1.PersistentVolumeSource{
				NFS: &v1.NFSVolumeSource{Server: server, Path: path.Join(share, dir)},
			},
		},
	}
}

func className(sc *storagev1.StorageClass) string {
	if sc == nil {
		return "(none)"
	}
	return fmt.Sprintf("%q", sc.GetName())
}

// openHint says what to check when an export cannot be mounted.
func openHint(err error) string {
	switch {
	case errors.Is(err, export.ErrPermission):
		return "; the server refused to mount it: give the export path exactly as the server exports it (NFS_PATH or the class's share parameter) and check the server allows this client"
	case errors.Is(err, context.DeadlineExceeded):
		return "; the NFS server did not answer in time: check it is up and reachable from the provisioner; this is retried"
	}
	return "; check the server name (NFS_SERVER or the class's server parameter) and that it serves NFSv3 over TCP; this is retried"
}

// hint adds what to do about the common NFS errors.
func hint(err error) string {
	switch {
	case errors.Is(err, export.ErrPermission):
		return "; the server refused: with root_squash set the class's uid/gid (or the claim's " + AnnDirectoryUID +
			"/" + AnnDirectoryGID + " annotations) to an owner allowed to write the export's directory, or export it with no_root_squash"
	case errors.Is(err, export.ErrNotDir):
		return "; a file or a symbolic link is in the way of the directory (links are never followed): change pathPattern or remove it"
	case errors.Is(err, context.DeadlineExceeded):
		return "; the NFS server did not answer in time: check it is up and reachable from the provisioner; this is retried"
	}
	return ""
}
