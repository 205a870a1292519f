package nfs41

import (
	"errors"
	"fmt"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// nfsstat4 values this package acts on or names (RFC 8881 section 15). The statuses NFSv3 also
// has keep their NFSv3 numbers.
const (
	statOK               = 0
	StatusPerm           = 1
	StatusNoEnt          = 2
	StatusIO             = 5
	StatusAccess         = 13
	StatusExist          = 17
	StatusNotDir         = 20
	StatusIsDir          = 21
	StatusInval          = 22
	StatusNoSpc          = 28
	StatusROFS           = 30
	StatusNameTooLong    = 63
	StatusNotEmpty       = 66
	StatusDQuot          = 69
	StatusStale          = 70
	StatusBadHandle      = 10001
	StatusBadCookie      = 10003
	StatusNotSupp        = 10004
	StatusServerFault    = 10006
	StatusBadType        = 10007
	StatusDelay          = 10008
	statusSame           = 10009
	StatusGrace          = 10013
	StatusFHExpired      = 10014
	StatusWrongSec       = 10016
	StatusResource       = 10018
	StatusNoFileHandle   = 10020
	StatusMinorVers      = 10021
	StatusStaleClientID  = 10022
	StatusBadStateID     = 10025
	statusNotSame        = 10027
	StatusSymlink        = 10029
	StatusAttrNotSupp    = 10032
	StatusBadXDR         = 10036
	StatusBadOwner       = 10039
	StatusBadChar        = 10040
	StatusBadName        = 10041
	StatusOpIllegal      = 10044
	StatusBadSession     = 10052
	StatusBadSlot        = 10053
	StatusSeqMisordered  = 10063
	StatusReqTooBig      = 10065
	StatusRepTooBig      = 10066
	StatusRetryUncached  = 10068
	StatusTooManyOps     = 10070
	StatusOpNotInSession = 10071
	StatusClientIDBusy   = 10074
	StatusSeqFalseRetry  = 10076
	StatusDeadSession    = 10078
	StatusWrongType      = 10083
)

var statusNames = map[uint32]string{
	StatusPerm: "PERM", StatusNoEnt: "NOENT", StatusIO: "IO", 6: "NXIO", StatusAccess: "ACCESS",
	StatusExist: "EXIST", 18: "XDEV", StatusNotDir: "NOTDIR", StatusIsDir: "ISDIR", StatusInval: "INVAL",
	27: "FBIG", StatusNoSpc: "NOSPC", StatusROFS: "ROFS", 31: "MLINK", StatusNameTooLong: "NAMETOOLONG",
	StatusNotEmpty: "NOTEMPTY", StatusDQuot: "DQUOT", StatusStale: "STALE", StatusBadHandle: "BADHANDLE",
	StatusBadCookie: "BAD_COOKIE", StatusNotSupp: "NOTSUPP", 10005: "TOOSMALL", StatusServerFault: "SERVERFAULT",
	StatusBadType: "BADTYPE", StatusDelay: "DELAY", statusSame: "SAME", 10011: "EXPIRED", 10012: "LOCKED", StatusGrace: "GRACE",
	StatusFHExpired: "FHEXPIRED", 10015: "SHARE_DENIED", StatusWrongSec: "WRONGSEC", 10017: "CLID_INUSE",
	StatusResource: "RESOURCE", 10019: "MOVED", StatusNoFileHandle: "NOFILEHANDLE", StatusMinorVers: "MINOR_VERS_MISMATCH",
	StatusStaleClientID: "STALE_CLIENTID", 10023: "STALE_STATEID", 10024: "OLD_STATEID", StatusBadStateID: "BAD_STATEID",
	10026: "BAD_SEQID", statusNotSame: "NOT_SAME", StatusSymlink: "SYMLINK", StatusAttrNotSupp: "ATTRNOTSUPP", StatusBadXDR: "BADXDR",
	10038: "OPENMODE", StatusBadOwner: "BADOWNER", StatusBadChar: "BADCHAR", StatusBadName: "BADNAME",
	StatusOpIllegal: "OP_ILLEGAL", 10046: "FILE_OPEN", 10047: "ADMIN_REVOKED", StatusBadSession: "BADSESSION",
	StatusBadSlot: "BADSLOT", 10055: "CONN_NOT_BOUND_TO_SESSION", StatusSeqMisordered: "SEQ_MISORDERED",
	10064: "SEQUENCE_POS", StatusReqTooBig: "REQ_TOO_BIG", StatusRepTooBig: "REP_TOO_BIG",
	10067: "REP_TOO_BIG_TO_CACHE", StatusRetryUncached: "RETRY_UNCACHED_REP", StatusTooManyOps: "TOO_MANY_OPS",
	StatusOpNotInSession: "OP_NOT_IN_SESSION", StatusClientIDBusy: "CLIENTID_BUSY", StatusSeqFalseRetry: "SEQ_FALSE_RETRY",
	10077: "BAD_HIGH_SLOT", StatusDeadSession: "DEADSESSION", 10081: "NOT_ONLY_OP", 10082: "WRONG_CRED",
	StatusWrongType: "WRONG_TYPE",
}

// StatusError is an NFS4ERR_* status the server answered an operation with. It matches the
// export errors with errors.Is, as the NFSv3 statuses of the same meaning do.
type StatusError struct {
	Op     string // the operation that failed ("CREATE", "LOOKUP", ...)
	Status uint32
}

// StatusName is the NFS4ERR_* name of st.
func StatusName(st uint32) string {
	if n, ok := statusNames[st]; ok {
		return "NFS4ERR_" + n
	}
	return fmt.Sprintf("NFS4ERR_%d", st)
}

func (e *StatusError) Error() string { return StatusName(e.Status) }

// Is maps statuses to the export errors.
func (e *StatusError) Is(target error) bool {
	switch target {
	case export.ErrServerReply:
		return true
	case export.ErrNotExist:
		return e.Status == StatusNoEnt
	case export.ErrExist:
		return e.Status == StatusExist || e.Status == StatusNotEmpty
	case export.ErrPermission:
		return e.Status == StatusPerm || e.Status == StatusAccess || e.Status == StatusROFS || e.Status == StatusWrongSec
	case export.ErrNotDir:
		return e.Status == StatusNotDir || e.Status == StatusSymlink
	case export.ErrInvalidPath:
		return e.Status == StatusNameTooLong || e.Status == StatusInval || e.Status == StatusBadChar || e.Status == StatusBadName
	case export.ErrBadOwner:
		return e.Status == StatusBadOwner
	}
	return false
}

// Status returns the NFSv4 status carried by err, or 0.
func Status(err error) uint32 {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}
