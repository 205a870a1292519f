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
	"fmt"
	"io/fs"
)

// Errors returned (wrapped) by every FS implementation. Test with errors.Is.
var (
	ErrNotExist    = fs.ErrNotExist
	ErrExist       = fs.ErrExist
	ErrPermission  = fs.ErrPermission
	ErrInvalidPath = errors.New("invalid path")
	ErrNotDir      = errors.New("not a directory")

	// ErrServerReply is matched by every error that is the server's own
	// answer: an NFS or MOUNT status of any kind (a full disk, a quota, an
	// I/O error on its side), an RPC denial. It proves the server is up.
	ErrServerReply = errors.New("the server replied")

	// ErrMaybeDone is matched by the error of an operation that was sent
	// again after its connection died: the first attempt may have taken
	// effect on the server although its reply was lost, and the error is
	// the server's answer to the repeat. A Mkdir's ErrExist so marked may
	// be the Mkdir's own directory; the caller decides (makeDirectory).
	ErrMaybeDone = errors.New("an earlier attempt may have taken effect")

	// ErrBadOwner is matched by an NFSv4 server's refusal of the owner strings an operation
	// sent (NFS4ERR_BADOWNER): its idmapping wants another form of them.
	ErrBadOwner = errors.New("the server refused the owner strings")

	// ErrTooDeep is matched by the error of a walk (a copy, a usage scan) that met a tree deeper
	// than it goes: the tree's doing, not the server's.
	ErrTooDeep = errors.New("tree too deep")
)

// Mode is permission bits as stat(2) and NFS carry them: 0o7777, with
// setuid (04000), setgid (02000) and sticky (01000) as plain bits, unlike
// os.FileMode's flags. The one mode type of the provisioner.
type Mode uint32

// ModeMask is the bits a Mode may hold.
const ModeMask Mode = 0o7777

// String is the mode in octal, as chmod takes it: "0775".
func (m Mode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// DirAttrs are the owner and permission bits of a directory to create.
type DirAttrs struct {
	Mode Mode
	UID  uint32
	GID  uint32
}

// Info describes an existing file or directory.
type Info struct {
	IsDir bool
	Mode  Mode
	UID   uint32
	GID   uint32
	// ID is the server's identity of the object (its NFS file handle; for a mounted export the
	// kernel's file handle), in hex: a rename keeps it, and a new object has another even when
	// it reuses a removed one's inode number. It tells whether what is at a path now is what
	// was there before.
	ID string
}

// FS is one NFS export. Implementations are safe for concurrent use, and
// no operation follows a symbolic link anywhere below the export root: a
// symlink where a directory is expected is ErrNotDir, a symlink being
// removed or renamed is the link itself.
type FS interface {
	// MkdirAll creates dir and any missing parents. Directories it creates
	// get attrs (owner and mode exactly, no umask). An existing directory
	// at dir or at a parent is left as it is and is not an error; an
	// existing non-directory is ErrNotDir.
	MkdirAll(ctx context.Context, dir string, attrs DirAttrs) error

	// Mkdir creates dir, whose parent must exist, with attrs exactly. When
	// anything is already at dir it fails with ErrExist and changes
	// nothing: the caller decides whether an existing directory may be
	// used. A directory it made but could not give attrs is removed again.
	Mkdir(ctx context.Context, dir string, attrs DirAttrs) error

	// SetAttrs gives the directory at dir attrs' owner and mode. A
	// non-directory (a symlink included) at dir is ErrNotDir.
	SetAttrs(ctx context.Context, dir string, attrs DirAttrs) error

	// Rename renames from to to (both relative to the export root). It never
	// replaces anything: when to exists it fails with ErrExist. A missing
	// from is ErrNotExist.
	Rename(ctx context.Context, from, to string) error

	// RemoveAll removes path and everything below it. A missing path is
	// not an error. The export root cannot be removed (ErrInvalidPath).
	// Memory stays bounded whatever the number of entries and the depth of
	// the tree; what was removed stays removed when it fails, so a retry
	// continues. progress, when not nil, is told the running total now
	// and then (from the calling goroutine).
	RemoveAll(ctx context.Context, path string, progress func(Removed)) error

	// Stat describes path; a missing path is ErrNotExist.
	Stat(ctx context.Context, path string) (Info, error)

	// Capacity is how big and how full the export's filesystem is.
	Capacity(ctx context.Context) (Capacity, error)

	// Usage walks the tree at dir and adds up what it holds, in memory
	// bounded whatever its size (one listing page and a bounded stack of
	// directories at a time); symlinks are counted, never followed, hard
	// links once per name. pace, when not nil, is called before every
	// listing the walk asks the server for, to hold a budget of calls.
	Usage(ctx context.Context, dir string, pace func(context.Context) error) (Usage, error)

	// Tree is the export's objects, for CopyTree.
	Tree() Tree
}

// Usage is what a directory tree holds.
type Usage struct {
	Bytes  uint64 // space used on the server (fattr3 used, st_blocks×512)
	Inodes uint64 // entries, the directory itself included
}

// MaxUsageDepth bounds how deep Usage walks; a deeper tree is an error. A
// backend that holds a descriptor per level may stop sooner (mounted: 128).
const MaxUsageDepth = 4096

// Capacity is what FSSTAT (or statfs) says of an export's filesystem.
type Capacity struct {
	SizeBytes, FreeBytes, AvailableBytes uint64 // available: free to an unprivileged user
	TotalInodes, FreeInodes              uint64
}

// Removed counts what a RemoveAll has removed so far.
type Removed struct {
	Files, Dirs uint64 // non-directories (files, symlinks, …) and directories
}

// Opener gives the FS for an export on a server. Implementations pool and
// reuse sessions, so Open is cheap after the first call for an export.
type Opener interface {
	Open(ctx context.Context, server, share string) (FS, error)
}
