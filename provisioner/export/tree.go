package export

import (
	"context"
	"time"
)

// FileType is the kind of an object a copy meets.
type FileType uint8

// The kinds of object. Devices, FIFOs and sockets are Other: a copy skips
// and counts them.
const (
	TypeOther FileType = iota
	TypeFile
	TypeDir
	TypeSymlink
)

// FileInfo is what a copy reads of an object and gives the copy of it.
type FileInfo struct {
	Type         FileType
	Mode         Mode
	UID, GID     uint32
	Size         uint64 // bytes (files), length of the target (symlinks)
	Links        uint32 // hard links to it
	Atime, Mtime time.Time
}

// Node is a backend's own reference to one object of a tree: an NFS file
// handle, a path walked without following links. It names the object
// itself, never something a symlink put in its place later leads to.
type Node any

// DirCursor is where a directory listing goes on: an NFS cookie and its
// verifier, or a directory offset. The zero value is the beginning.
type DirCursor struct {
	Cookie   uint64
	Verifier [8]byte
}

// DirEntry is one entry of a listing, "." and ".." left out.
type DirEntry struct {
	Name string
	Node Node
	Info FileInfo
	Next DirCursor // where the listing resumes after this entry
}

// Tree is the object-level access to an export a copy needs: reading a
// tree on one export and writing a new one on another (or the same). Nodes
// of one Tree are passed back to that Tree only. Implementations are safe
// for concurrent use; none follows a symbolic link.
type Tree interface {
	// OpenDir gives the directory at dir (a path as in FS).
	OpenDir(ctx context.Context, dir string) (Node, FileInfo, error)
	// ReadDir returns one page of dir's listing from at; eof when it is the last.
	ReadDir(ctx context.Context, dir Node, at DirCursor) (ents []DirEntry, next DirCursor, eof bool, err error)
	// ReadAt reads into p from off of a regular file; eof when the file ends with what it read.
	ReadAt(ctx context.Context, file Node, p []byte, off uint64) (n int, eof bool, err error)
	// ReadLink returns a symbolic link's target.
	ReadLink(ctx context.Context, link Node) (string, error)

	// Mkdir creates the directory name in parent, owned as a says, with a mode that lets the
	// copy fill it (Finish gives it a's mode once its entries are made). Anything already
	// there is ErrExist.
	Mkdir(ctx context.Context, parent Node, name string, a FileInfo) (Node, error)
	// Create creates the empty regular file name in parent, owned as a says and writable by
	// its owner; anything already there is ErrExist.
	Create(ctx context.Context, parent Node, name string, a FileInfo) (Node, error)
	// WriteAt writes p at off of a file Create made; it may be durable only after Finish.
	// whole says p is all the file holds: a backend may then make it durable at once.
	WriteAt(ctx context.Context, file Node, p []byte, off uint64, whole bool) error
	// Symlink creates the symbolic link name → target in parent, with a's owner and, where
	// the backend can set them without following the link, its times.
	Symlink(ctx context.Context, parent Node, name, target string, a FileInfo) error
	// Finish makes what was written to a node durable and gives it a's mode, owner and times
	// (and, to a file, a.Size: chunks of zeros are not written, leaving holes).
	Finish(ctx context.Context, n Node, a FileInfo) error

	// IOSize is the largest read and write worth sending at once (NFS: FSINFO rtmax/wtmax,
	// bounded by the reply size the client takes).
	IOSize(ctx context.Context) (int, error)
}
