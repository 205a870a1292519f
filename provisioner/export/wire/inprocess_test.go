package wire_test

import (
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/exporttest"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire/wiretest"
)

// openInProcess starts an in-process server and opens its export.
func openInProcess(tb testing.TB, o wire.Options) (*wiretest.Server, *wire.FS) {
	tb.Helper()
	srv := wiretest.Start(tb, "")
	o.NFSPort, o.MountPort = srv.Port, srv.Port
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	return srv, wire.OpenForTest(tb, o, srv.Host, srv.Path)
}

func TestContractInProcess(t *testing.T) {
	// Small READDIRPLUS replies so that listings span several of them.
	srv, fsys := openInProcess(t, wire.Options{ReaddirBytes: 4096})
	exporttest.Run(t, fsys, exporttest.Options{
		Owner:          export.DirAttrs{UID: 0, GID: 0},
		NoSpecialModes: true, // go-nfs masks SETATTR/MKDIR modes with 0777
		Populate: func(t *testing.T, path string, data []byte) {
			srv.Populate(t, path, data)
		},
		// No Swap: go-nfs applies MKDIR's attributes by path, following a
		// swapped-in symlink on the server side; Ganesha (handle based) is
		// held to the swap case.
		Symlink:         exporttest.LocalSymlink(srv.Dir),
		RenameChangesID: true, // go-nfs's handles name paths; Ganesha's survive a rename
	})
}
