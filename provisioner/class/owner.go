package class

import (
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// DefaultOwner is what a directory gets when nothing else is configured:
// mode 0777, root:root — what nfs-subdir-external-provisioner does.
var DefaultOwner = export.DirAttrs{Mode: 0o777, UID: 0, GID: 0}

// ResolveOwner picks owner and mode field by field, first set wins:
// PVC annotation, then StorageClass parameter, then the provisioner's
// defaults (NFS_DEFAULT_MODE/UID/GID), then DefaultOwner.
func ResolveOwner(layers ...OwnerOverride) export.DirAttrs {
	out := DefaultOwner
	var modeSet, uidSet, gidSet bool
	for _, l := range layers {
		if l.Mode != nil && !modeSet {
			out.Mode, modeSet = *l.Mode, true
		}
		if l.UID != nil && !uidSet {
			out.UID, uidSet = *l.UID, true
		}
		if l.GID != nil && !gidSet {
			out.GID, gidSet = *l.GID, true
		}
	}
	return out
}
