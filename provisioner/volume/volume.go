// Package volume is the vocabulary every lifecycle of a volume shares: a claim's directory-to-be
// (Volume), where an existing PV's directory is (Location, Locator, the annotations on each PV),
// which PVs use a directory (Index), the names kept for archives and clone staging, refusals
// that tell a claim what to change, and the hints added to NFS errors. It calls only the class
// parser and export; everything that acts on an export calls it.
package volume

import (
	"fmt"
	"path"
	"strings"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/labels"
	storagelisters "k8s.io/client-go/listers/storage/v1"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/pathpattern"
)

// Annotations recorded on every PV, so that Delete needs nothing but the PV: it still works
// after the StorageClass is deleted or the provisioner's default server and path change.
const (
	AnnShare     = "nfs-subdir-provisioner.io/share"
	AnnDirectory = "nfs-subdir-provisioner.io/directory"
	AnnOnDelete  = "nfs-subdir-provisioner.io/on-delete"
	// AnnNFSVersion is the NFS version the directory was made over ("3", "4.1"): it is found,
	// archived and removed over the same one (a file handle differs between versions).
	AnnNFSVersion = "nfs-subdir-provisioner.io/nfs-version"
	// AnnNamespaceUID is the UID of the claim's namespace when the PV was made (classes with
	// archiveRetention): its archive is restored only into that very namespace.
	AnnNamespaceUID = "nfs-subdir-provisioner.io/namespace-uid"
	// AnnProvisionedBy is the library's: the provisioner name that made a PV.
	AnnProvisionedBy = "pv.kubernetes.io/provisioned-by"
)

// Volume is one claim's directory-to-be: where it goes and whose it is.
type Volume struct {
	Claim              *v1.PersistentVolumeClaim
	PV                 string
	Class              class.Options
	Server, Share, Dir string
	Attrs              export.DirAttrs // of the claim's directory
	ParentAttrs        export.DirAttrs // of parents it creates: the class's, not one claim's
	Own                bool            // the pattern makes paths unique to the claim
	Scoped             bool            // the pattern begins with the namespace
}

// Location is where a PV's directory lives and what to do with it on delete.
type Location struct {
	Server, Share, Dir string
	OnDelete           class.OnDelete
	// Version is the NFS version the volume is spoken to with: the one its PV's mountOptions
	// name (nfsvers=, vers=), which is the one it was made over; "" for the default.
	Version export.Version
}

func (l Location) String() string { return l.Server + ":" + path.Join(l.Share, l.Dir) }

// Export is one export as its first user spells it (for calls and metric labels).
type Export struct{ Server, Share string }

// Locator knows where volumes go and are: the provisioner's default export and its
// StorageClasses.
type Locator struct {
	Name                        string                            // PROVISIONER_NAME: which StorageClasses are ours
	DefaultServer, DefaultShare string                            // NFS_SERVER, NFS_PATH
	Classes                     storagelisters.StorageClassLister // optional
}

// Target is the export of a class: its server and share, or the defaults.
func (l *Locator) Target(opts class.Options) (server, share string) {
	server, share = l.DefaultServer, l.DefaultShare
	if opts.Server != "" {
		server = opts.Server
	}
	if opts.Share != "" {
		share = opts.Share
	}
	return server, share
}

// Class is the StorageClass name now, nil when it is gone (or there are no classes to read).
func (l *Locator) Class(name string) *storagev1.StorageClass {
	if l.Classes == nil || name == "" {
		return nil
	}
	sc, err := l.Classes.Get(name)
	if err != nil {
		return nil
	}
	return sc
}

// InUse lists each export in use once: the default one and those of this provisioner's classes.
func (l *Locator) InUse() []Export {
	seen := map[export.Target]bool{}
	var out []Export
	add := func(server, share string) {
		if server == "" || share == "" {
			return
		}
		if t := export.NewTarget(server, share); !seen[t] {
			seen[t] = true
			out = append(out, Export{server, share})
		}
	}
	add(l.DefaultServer, l.DefaultShare)
	if l.Classes == nil {
		return out
	}
	classes, err := l.Classes.List(labels.Everything())
	if err != nil {
		return out
	}
	for _, sc := range classes {
		if sc.Provisioner != l.Name {
			continue
		}
		opts, err := class.Parse(sc.Parameters)
		if err != nil {
			continue
		}
		add(l.Target(opts))
	}
	return out
}

// Locate reads where a PV's directory is. PVs this provisioner made carry annotations; PVs made by
// nfs-subdir-external-provisioner (users switching over) are understood when they lie below the
// default export path.
func (l *Locator) Locate(pv *v1.PersistentVolume) (Location, error) {
	if pv.Spec.NFS == nil {
		return Location{}, fmt.Errorf("it is not an NFS volume")
	}
	loc := Location{Server: pv.Spec.NFS.Server}
	full := pv.Spec.NFS.Path
	if share, ok := pv.Annotations[AnnShare]; ok {
		var err error
		if loc.Share, err = class.CleanShare(share); err != nil {
			return loc, fmt.Errorf("annotation %s: %w", AnnShare, err)
		}
		loc.Dir = pv.Annotations[AnnDirectory]
		loc.OnDelete = class.OnDelete(pv.Annotations[AnnOnDelete])
		if path.Join(loc.Share, loc.Dir) != path.Clean(full) {
			return loc, fmt.Errorf("spec.nfs.path %q does not match its annotations %s=%q and %s=%q (was the PV edited?)",
				full, AnnShare, loc.Share, AnnDirectory, loc.Dir)
		}
	} else if err := l.locateLegacy(pv, &loc); err != nil {
		return loc, err
	}
	clean, err := pathpattern.SafeRelPath(loc.Dir)
	if err != nil {
		return loc, fmt.Errorf("directory %q: %w", loc.Dir, err)
	}
	if clean != loc.Dir {
		return loc, fmt.Errorf("directory %q is not in canonical form", loc.Dir)
	}
	switch loc.OnDelete {
	case class.OnDeleteArchive, class.OnDeleteDelete, class.OnDeleteRetain:
	default:
		return loc, fmt.Errorf("annotation %s=%q is not archive, delete or retain", AnnOnDelete, loc.OnDelete)
	}
	// The version it was made over; on PVs from before it was recorded, what their mountOptions
	// name (a version the provisioner does not speak, nfsvers=2, is the default's).
	if v := pv.Annotations[AnnNFSVersion]; v == "3" || v == "4.1" {
		loc.Version = export.Version(v)
	} else {
		loc.Version, _ = class.MountVersion(pv.Spec.MountOptions)
	}
	return loc, nil
}

// locateLegacy handles a PV without our annotations: its path must lie strictly below the default
// export path on the default server, and the delete policy comes from its StorageClass (archive
// when the class is gone: when in doubt, keep the data).
func (l *Locator) locateLegacy(pv *v1.PersistentVolume, loc *Location) error {
	share := l.DefaultShare
	if share == "" || export.CanonicalServer(loc.Server) != export.CanonicalServer(l.DefaultServer) {
		return fmt.Errorf("it has no %s annotation and is not on the default export %s:%s", AnnShare, l.DefaultServer, share)
	}
	full := path.Clean(pv.Spec.NFS.Path)
	rel, ok := strings.CutPrefix(full, strings.TrimRight(share, "/")+"/")
	if !ok {
		return fmt.Errorf("its path %q is not below the default export path %s", pv.Spec.NFS.Path, share)
	}
	loc.Share, loc.Dir, loc.OnDelete = share, rel, class.OnDeleteArchive
	sc := l.Class(pv.Spec.StorageClassName)
	if sc == nil {
		return nil
	}
	if opts, err := class.Parse(sc.Parameters); err == nil {
		loc.OnDelete = opts.OnDelete
	}
	return nil
}
