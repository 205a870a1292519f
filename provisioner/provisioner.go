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

	"github.com/nfs-subdir/provisioner/provisioner/export"
)

// Annotations recorded on every PV, so that Delete needs nothing but the PV:
// it still works after the StorageClass is deleted or the provisioner's
// default server and path change.
const (
	AnnShare     = "nfs-subdir-provisioner.io/share"
	AnnDirectory = "nfs-subdir-provisioner.io/directory"
	AnnOnDelete  = "nfs-subdir-provisioner.io/on-delete"
)

// Event reasons the provisioner emits itself (the library emits
// ProvisioningFailed, ProvisioningSucceeded and VolumeFailedDelete).
const (
	ReasonDirectoryKept = "DirectoryKept"
)

// Config is everything a Provisioner needs.
type Config struct {
	DefaultServer string        // NFS_SERVER
	DefaultShare  string        // NFS_PATH
	Defaults      OwnerOverride // NFS_DEFAULT_MODE/UID/GID
	Opener        export.Opener
	Volumes       VolumeIndex
	Classes       storagelisters.StorageClassLister // optional: policy of PVs made by the anchor project
	Recorder      record.EventRecorder
	Timeout       time.Duration // bound on the NFS work of one Provision or Delete
}

// Provisioner implements controller.Provisioner.
type Provisioner struct {
	cfg  Config
	gate *serverGate
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
	return &Provisioner{cfg: cfg, gate: newServerGate()}
}

// Provision creates the claim's directory and returns its PV. Every error
// message says what the user should change; the library turns it into a
// ProvisioningFailed Event on the claim.
func (p *Provisioner) Provision(ctx context.Context, opts controller.ProvisionOptions) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	claim := opts.PVC
	if claim.Spec.Selector != nil {
		return nil, controller.ProvisioningFinished, fmt.Errorf("claim has spec.selector, which a dynamically provisioned NFS volume cannot satisfy; remove the selector")
	}
	var params map[string]string
	if opts.StorageClass != nil {
		params = opts.StorageClass.Parameters
	}
	class, err := ParseClassOptions(params)
	if err != nil {
		return nil, controller.ProvisioningFinished, fmt.Errorf("StorageClass %s: %w", className(opts.StorageClass), err)
	}
	claimOwner, err := ParseClaimOwner(claim.Annotations)
	if err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	dir, err := VolumePath(class.PathPattern, claim, opts.PVName)
	if err != nil {
		return nil, controller.ProvisioningFinished, fmt.Errorf("StorageClass %s: %w", className(opts.StorageClass), err)
	}
	server, share := p.target(class)
	if server == "" || share == "" {
		return nil, controller.ProvisioningFinished, fmt.Errorf("no NFS server or export path: set NFS_SERVER and NFS_PATH on the provisioner, or parameters %q and %q on StorageClass %s",
			ParamServer, ParamShare, className(opts.StorageClass))
	}
	attrs := ResolveOwner(claimOwner, class.Owner, p.cfg.Defaults)

	probe, err := p.gate.enter(server)
	if err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	fsys, err := p.cfg.Opener.Open(ctx, server, share)
	p.gateOpen(server, probe, err)
	if err != nil {
		// Nothing was created: whatever state the claim was in still holds.
		return nil, controller.ProvisioningNoChange, fmt.Errorf("open export %s:%s: %w%s", server, share, err, openHint(err))
	}
	err = fsys.MkdirAll(ctx, dir, attrs)
	p.gate.leave(server, probe, err)
	if err != nil {
		state := controller.ProvisioningInBackground // the MKDIR may have reached the server
		if errors.Is(err, export.ErrPermission) || errors.Is(err, export.ErrNotDir) || errors.Is(err, export.ErrInvalidPath) {
			state = controller.ProvisioningFinished
		}
		return nil, state, fmt.Errorf("create directory %s on %s:%s (mode %04o, uid %d, gid %d): %w%s",
			dir, server, share, attrs.Mode, attrs.UID, attrs.GID, err, hint(err))
	}
	pv := newVolume(opts, server, share, dir, class.OnDelete)
	klog.FromContext(ctx).V(2).Info("provisioned", "pvc", klog.KObj(claim), "pv", pv.Name, "server", server, "path", pv.Spec.NFS.Path)
	return pv, controller.ProvisioningFinished, nil
}

// gateOpen reports a failed Open to the gate; a successful one is reported
// with the operation that follows it.
func (p *Provisioner) gateOpen(server string, probe bool, err error) {
	if err != nil {
		p.gate.leave(server, probe, err)
	}
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
		return "; a file is in the way of the directory: change pathPattern or remove the file"
	case errors.Is(err, context.DeadlineExceeded):
		return "; the NFS server did not answer in time: check it is up and reachable from the provisioner; this is retried"
	}
	return ""
}
