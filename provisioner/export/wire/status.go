package wire

import (
	"errors"
	"fmt"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/nfs41"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
)

// StatusError is an NFS3ERR_* or MNT3ERR_* status from the server, or an NFS4ERR_* one of an
// NFSv4.1 export (V4; the statuses both versions have share their numbers). It matches the
// export errors with errors.Is.
type StatusError struct {
	Mount  bool // a MOUNT status rather than an NFS one
	V4     bool // an NFSv4 status (of operation Op)
	Op     string
	Status uint32
}

var statusNames = map[uint32]string{
	nfsc.NFS3ErrPerm: "NFS3ERR_PERM", nfsc.NFS3ErrNoEnt: "NFS3ERR_NOENT", nfsc.NFS3ErrIO: "NFS3ERR_IO",
	nfsc.NFS3ErrNXIO: "NFS3ERR_NXIO", nfsc.NFS3ErrAcces: "NFS3ERR_ACCES", nfsc.NFS3ErrExist: "NFS3ERR_EXIST",
	nfsc.NFS3ErrXDev: "NFS3ERR_XDEV", nfsc.NFS3ErrNoDev: "NFS3ERR_NODEV", nfsc.NFS3ErrNotDir: "NFS3ERR_NOTDIR",
	nfsc.NFS3ErrIsDir: "NFS3ERR_ISDIR", nfsc.NFS3ErrInval: "NFS3ERR_INVAL", nfsc.NFS3ErrFBig: "NFS3ERR_FBIG",
	nfsc.NFS3ErrNoSpc: "NFS3ERR_NOSPC", nfsc.NFS3ErrROFS: "NFS3ERR_ROFS", nfsc.NFS3ErrMLink: "NFS3ERR_MLINK",
	nfsc.NFS3ErrNameTooLong: "NFS3ERR_NAMETOOLONG", nfsc.NFS3ErrNotEmpty: "NFS3ERR_NOTEMPTY",
	nfsc.NFS3ErrDQuot: "NFS3ERR_DQUOT", nfsc.NFS3ErrStale: "NFS3ERR_STALE", nfsc.NFS3ErrRemote: "NFS3ERR_REMOTE",
	nfsc.NFS3ErrBadHandle: "NFS3ERR_BADHANDLE", nfsc.NFS3ErrNotSync: "NFS3ERR_NOT_SYNC",
	nfsc.NFS3ErrBadCookie: "NFS3ERR_BAD_COOKIE", nfsc.NFS3ErrNotSupp: "NFS3ERR_NOTSUPP",
	nfsc.NFS3ErrTooSmall: "NFS3ERR_TOOSMALL", nfsc.NFS3ErrServerFault: "NFS3ERR_SERVERFAULT",
	nfsc.NFS3ErrBadType: "NFS3ERR_BADTYPE", nfs3ErrJukebox: "NFS3ERR_JUKEBOX",
}

var mountStatusNames = map[uint32]string{
	nfsc.MNT3ErrPerm: "MNT3ERR_PERM", nfsc.MNT3ErrNoEnt: "MNT3ERR_NOENT", nfsc.MNT3ErrIO: "MNT3ERR_IO",
	nfsc.MNT3ErrAcces: "MNT3ERR_ACCES", nfsc.MNT3ErrNotDir: "MNT3ERR_NOTDIR", nfsc.MNT3ErrInval: "MNT3ERR_INVAL",
	nfsc.MNT3ErrNameTooLong: "MNT3ERR_NAMETOOLONG", nfsc.MNT3ErrNotSupp: "MNT3ERR_NOTSUPP",
	nfsc.MNT3ErrServerFault: "MNT3ERR_SERVERFAULT",
}

func (e *StatusError) Error() string {
	if e.V4 {
		return nfs41.StatusName(e.Status)
	}
	names, prefix := statusNames, "NFS3ERR"
	if e.Mount {
		names, prefix = mountStatusNames, "MNT3ERR"
	}
	if n, ok := names[e.Status]; ok {
		return n
	}
	return fmt.Sprintf("%s_%d", prefix, e.Status)
}

// Is maps statuses to the export errors.
func (e *StatusError) Is(target error) bool {
	switch target {
	case export.ErrServerReply:
		return true
	case export.ErrNotExist:
		return e.Status == nfsc.NFS3ErrNoEnt
	case export.ErrExist:
		return !e.Mount && (e.Status == nfsc.NFS3ErrExist || e.Status == nfsc.NFS3ErrNotEmpty)
	case export.ErrPermission:
		return e.Status == nfsc.NFS3ErrPerm || e.Status == nfsc.NFS3ErrAcces || (!e.Mount && e.Status == nfsc.NFS3ErrROFS)
	case export.ErrNotDir:
		return e.Status == nfsc.NFS3ErrNotDir
	case export.ErrInvalidPath:
		return e.Status == nfsc.NFS3ErrNameTooLong || (!e.Mount && e.Status == nfsc.NFS3ErrInval) ||
			(e.V4 && (e.Status == nfs41.StatusBadChar || e.Status == nfs41.StatusBadName))
	case export.ErrBadOwner:
		return e.V4 && e.Status == nfs41.StatusBadOwner
	}
	return false
}

func nfsStatus(st uint32) error {
	if st == nfsc.NFS3Ok {
		return nil
	}
	return &StatusError{Status: st}
}

// statusOf returns the NFS status carried by err, or 0.
func statusOf(err error) uint32 {
	var se *StatusError
	if errors.As(err, &se) && !se.Mount {
		return se.Status
	}
	return 0
}

func isStale(err error) bool {
	st := statusOf(err)
	return st == nfsc.NFS3ErrStale || st == nfsc.NFS3ErrBadHandle
}

func isDenied(err error) bool {
	st := statusOf(err)
	return st == nfsc.NFS3ErrAcces || st == nfsc.NFS3ErrPerm
}

// Result classifies err for a metrics label: "ok", an NFS3ERR_*/MNT3ERR_*/NFS4ERR_* name, or the
// transport's classes (sunrpc.Result): "timeout", "canceled", "rpc", "protocol", "connection",
// "error".
func Result(err error) string {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Error()
	}
	var se4 *nfs41.StatusError
	if errors.As(err, &se4) {
		return se4.Error()
	}
	return sunrpc.Result(err)
}
