// Package export defines the small set of directory operations the
// provisioner needs on an NFS export, independent of how the export is
// reached (NFSv3 over the wire, or a locally mounted directory).
//
// Paths are slash-separated and relative to the export root, in the form
// accepted by io/fs.ValidPath: "." is the root, no leading slash, no "..",
// no empty elements. Implementations must refuse anything else with
// ErrInvalidPath, so that no caller can reach outside the export.
package export

import (
	"context"
	"errors"
	"io/fs"
	"os"
)

// Errors returned (wrapped) by every FS implementation. Test with errors.Is.
var (
	ErrNotExist    = fs.ErrNotExist
	ErrExist       = fs.ErrExist
	ErrPermission  = fs.ErrPermission
	ErrInvalidPath = errors.New("invalid path")
	ErrNotDir      = errors.New("not a directory")
)

// DirAttrs are the owner and permission bits of a directory to create.
type DirAttrs struct {
	Mode os.FileMode // permission bits, including setuid/setgid/sticky (fs.ModeSetuid etc. are not used: plain 07777 bits)
	UID  uint32
	GID  uint32
}

// Info describes an existing file or directory.
type Info struct {
	IsDir bool
	Mode  os.FileMode // permission bits only (07777)
	UID   uint32
	GID   uint32
}

// FS is one NFS export. Implementations are safe for concurrent use.
type FS interface {
	// MkdirAll creates dir and any missing parents. Directories it creates
	// get attrs (owner and mode exactly, no umask). An existing directory
	// at dir or at a parent is left as it is and is not an error; an
	// existing non-directory is ErrNotDir.
	MkdirAll(ctx context.Context, dir string, attrs DirAttrs) error

	// Rename renames from to to (both relative to the export root). It never
	// replaces anything: when to exists it fails with ErrExist. A missing
	// from is ErrNotExist.
	Rename(ctx context.Context, from, to string) error

	// RemoveAll removes path and everything below it. A missing path is
	// not an error. The export root cannot be removed (ErrInvalidPath).
	RemoveAll(ctx context.Context, path string) error

	// Stat describes path; a missing path is ErrNotExist.
	Stat(ctx context.Context, path string) (Info, error)
}

// Opener gives the FS for an export on a server. Implementations pool and
// reuse sessions, so Open is cheap after the first call for an export.
type Opener interface {
	Open(ctx context.Context, server, share string) (FS, error)
}
