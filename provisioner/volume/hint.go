package volume

import (
	"context"
	"errors"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// Hint adds what to do about the common NFS errors (for Events).
func Hint(err error) string {
	switch {
	case errors.Is(err, export.ErrBadOwner):
		return "; the NFSv4 server refused the owner strings (NFS4ERR_BADOWNER), which are numeric (\"2000\"): set the domain its idmapping uses (NFS_OWNER_DOMAIN, --nfs-owner-domain, chart nfs.ownerDomain) to send \"2000@domain\", " +
			"or let it take numeric ids (Linux knfsd: nfs4_disable_idmapping=Y; Ganesha: NFSV4 { Allow_Numeric_Owners = true; })"
	case errors.Is(err, export.ErrPermission):
		return "; the server refused: with root_squash set the class's uid/gid (or the claim's " + class.AnnDirectoryUID +
			"/" + class.AnnDirectoryGID + " annotations) to an owner allowed to write the export's directory, or export it with no_root_squash"
	case errors.Is(err, export.ErrNotDir):
		return "; a file or a symbolic link is in the way of the directory (links are never followed): change pathPattern or remove it"
	case errors.Is(err, context.DeadlineExceeded):
		return "; the NFS server did not answer in time: check it is up and reachable from the provisioner; this is retried"
	}
	return ""
}
