package wire

import (
	"errors"
	"strings"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/nfs41"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// NFSv4 statuses reach the path logic with NFSv3's numbers and the export errors, named as
// NFSv4 names them, keeping whether the call may have been done twice.
func TestV4Errors(t *testing.T) {
	for _, tc := range []struct {
		status uint32
		is     error
		name   string
	}{
		{nfs41.StatusNoEnt, export.ErrNotExist, "NFS4ERR_NOENT"},
		{nfs41.StatusExist, export.ErrExist, "NFS4ERR_EXIST"},
		{nfs41.StatusAccess, export.ErrPermission, "NFS4ERR_ACCESS"},
		{nfs41.StatusSymlink, export.ErrNotDir, "NFS4ERR_NOTDIR"},
		{nfs41.StatusBadOwner, export.ErrBadOwner, "NFS4ERR_BADOWNER"},
		{nfs41.StatusBadName, export.ErrInvalidPath, "NFS4ERR_BADNAME"},
	} {
		err := v4err(&nfs41.StatusError{Op: "MKDIR", Status: tc.status})
		if !errors.Is(err, tc.is) || err.Error() != tc.name || Result(err) != tc.name {
			t.Errorf("status %d: %v (Result %s), want %s matching %v", tc.status, err, Result(err), tc.name, tc.is)
		}
		if errors.Is(err, export.ErrMaybeDone) {
			t.Errorf("status %d: maybe done without a resend", tc.status)
		}
		again := v4err(&sunrpc.Repeated{Err: &nfs41.StatusError{Status: tc.status}})
		if !errors.Is(again, export.ErrMaybeDone) || !errors.Is(again, tc.is) {
			t.Errorf("status %d after a resend: %v, want it maybe done and %v", tc.status, again, tc.is)
		}
	}
	if h := volume.Hint(v4err(&nfs41.StatusError{Status: nfs41.StatusBadOwner})); !strings.Contains(h, "NFS_OWNER_DOMAIN") {
		t.Errorf("BADOWNER's hint %q does not name the setting", h)
	}
	if isStale(v4err(&nfs41.StatusError{Status: nfs41.StatusStale})) != true {
		t.Error("NFS4ERR_STALE is not stale")
	}
}
