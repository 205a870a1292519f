package mounted

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// Tree is the export's objects for export.CopyTree. A node is a name in its parent's node, walked
// again by each operation one component at a time from the mount root without following a symlink
// anywhere (O_NOFOLLOW), so a directory swapped for a link during a copy is an error, never a way
// out. A node holds its own name only (its parent is shared), so a copy's memory does not grow
// with the depth times the names of a tenant's tree; nodes more than maxTreeDepth levels below the
// directory OpenDir gave are refused (export.ErrTooDeep), so that every walk of one stays bounded.
func (f *FS) Tree() export.Tree { return &tree{f: f} }

type tree struct{ f *FS }

// maxTreeDepth is how many levels below its top a copy goes: the README's "at most 128 levels"
// for the mounted backend, the usage walk's bound (maxStack) too, so a tree the clone measured
// is a tree it can copy.
const maxTreeDepth = maxStack

// treeNode is a directory entry: its name in the parent (nil and "" for the export root).
type treeNode struct {
	parent *treeNode
	name   string
	depth  int // components below the export root
	level  int // levels below the directory OpenDir gave
}

// String is the node's path below the export root ("." for the root), for errors.
func (n *treeNode) String() string {
	if n.parent == nil {
		return "."
	}
	return strings.Join(n.elems(), "/")
}

// elems are the node's path components from the export root.
func (n *treeNode) elems() []string {
	elems := make([]string, n.depth)
	for c := n; c.parent != nil; c = c.parent {
		elems[c.depth-1] = c.name
	}
	return elems
}

func nodeOf(n export.Node) (*treeNode, error) {
	p, ok := n.(*treeNode)
	if !ok || p == nil {
		return nil, fmt.Errorf("%w: not a node of this backend (%T)", export.ErrInvalidPath, n)
	}
	return p, nil
}

// nodeAt is the node of the path p (checked as every FS path is).
func nodeAt(p string) (*treeNode, error) {
	elems, err := export.SplitPath(p, true)
	if err != nil {
		return nil, err
	}
	n := &treeNode{} // the walk's top, level 0, whatever its depth
	for _, e := range elems {
		n = &treeNode{parent: n, name: e, depth: n.depth + 1}
	}
	return n, nil
}

// childOf is the node of name in the directory n. name is any name a POSIX directory can hold
// (bytes, not necessarily UTF-8) but one path element: the *at calls below use it as it is.
func childOf(n export.Node, name string) (*treeNode, error) {
	parent, err := nodeOf(n)
	if err != nil {
		return nil, err
	}
	return childNode(parent, name)
}

func childNode(parent *treeNode, name string) (*treeNode, error) {
	if name == "" || name == "." || name == ".." || len(name) > export.MaxNameBytes || strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("%w: %q is not a name in a directory", export.ErrInvalidPath, name)
	}
	if parent.level >= maxTreeDepth {
		return nil, fmt.Errorf("%s/…: deeper than %d levels: %w", export.TreePath(parent.elems(), true), maxTreeDepth, export.ErrTooDeep)
	}
	return &treeNode{parent: parent, name: name, depth: parent.depth + 1, level: parent.level + 1}, nil
}

// at opens the parent of node with O_PATH and returns the name in it; the caller releases it.
func (t *tree) at(n export.Node) (dirfd int, name string, err error) {
	node, err := nodeOf(n)
	if err != nil {
		return -1, "", err
	}
	if node.parent == nil {
		return -1, "", fmt.Errorf("%w: the export root is not a file", export.ErrInvalidPath)
	}
	dirfd, err = t.f.walk(node.parent.elems())
	return dirfd, node.name, err
}

// open opens node (O_NOFOLLOW) with flags and returns its descriptor.
func (t *tree) open(n export.Node, flags int, mode uint32) (int, error) {
	node, err := nodeOf(n)
	if err != nil {
		return -1, err
	}
	if node.parent == nil {
		return unix.FcntlInt(uintptr(t.f.root), unix.F_DUPFD_CLOEXEC, 0)
	}
	dirfd, name, err := t.at(n)
	if err != nil {
		return -1, err
	}
	defer t.f.release(dirfd)
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return -1, t.f.wrap("open", node.String(), err)
	}
	return fd, nil
}

// openDir opens the directory node for reading, not following a symlink anywhere.
func (t *tree) openDir(n *treeNode) (int, error) {
	fd, err := t.open(n, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if errors.Is(err, unix.ELOOP) {
		return -1, t.f.wrap("open", n.String(), unix.ENOTDIR)
	}
	return fd, err
}

func (t *tree) OpenDir(ctx context.Context, dir string) (export.Node, export.FileInfo, error) {
	node, err := nodeAt(dir)
	if err != nil {
		return nil, export.FileInfo{}, err
	}
	fd, err := t.f.openTree(ctx, dir)
	if err != nil {
		return nil, export.FileInfo{}, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, export.FileInfo{}, t.f.wrap("stat", dir, err)
	}
	return node, fileInfo(&st), nil
}

func (t *tree) ReadDir(ctx context.Context, n export.Node, at export.DirCursor) ([]export.DirEntry, export.DirCursor, bool, error) {
	node, err := nodeOf(n)
	if err != nil {
		return nil, at, false, err
	}
	if err := ctx.Err(); err != nil {
		return nil, at, false, err
	}
	p := node.String()
	fd, err := t.openDir(node)
	if err != nil {
		return nil, at, false, err
	}
	defer unix.Close(fd)
	var ents []export.DirEntry
	next, eof, err := readPage(fd, at.Cookie, func(d dirent, next uint64) error {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, d.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil // gone since the listing
		}
		child, err := childNode(node, d.name)
		if err != nil {
			return err
		}
		ents = append(ents, export.DirEntry{Name: d.name, Node: child, Info: fileInfo(&st), Next: export.DirCursor{Cookie: next}})
		return nil
	})
	if err != nil {
		return nil, at, false, t.f.wrap("list", p, err)
	}
	return ents, export.DirCursor{Cookie: next}, eof, nil
}

func (t *tree) ReadAt(ctx context.Context, n export.Node, p []byte, off uint64) (int, bool, error) {
	// Opened with O_PATH first: a FIFO or device a tenant renamed over the file is never
	// opened for reading (which could block, or act on a device); only a regular file is.
	pfd, err := t.open(n, unix.O_PATH, 0)
	if err != nil {
		return 0, false, err
	}
	var st unix.Stat_t
	err = unix.Fstat(pfd, &st)
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
		err = fmt.Errorf("no longer a regular file (mode %o)", st.Mode)
	}
	var fd int
	if err == nil {
		fd, err = unix.Open(fmt.Sprintf("/proc/self/fd/%d", pfd), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	}
	unix.Close(pfd)
	if err != nil {
		return 0, false, fmt.Errorf("read: %w", err)
	}
	defer unix.Close(fd)
	got := 0
	for got < len(p) {
		m, err := unix.Pread(fd, p[got:], int64(off)+int64(got))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return got, false, fmt.Errorf("read: %w", err)
		}
		if m == 0 {
			return got, true, nil
		}
		got += m
	}
	return got, false, nil
}

func (t *tree) ReadLink(ctx context.Context, n export.Node) (string, error) {
	dirfd, name, err := t.at(n)
	if err != nil {
		return "", err
	}
	defer t.f.release(dirfd)
	buf := make([]byte, unix.PathMax)
	m, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", fmt.Errorf("readlink %s: %w", name, err)
	}
	return string(buf[:m]), nil
}

func (t *tree) Mkdir(ctx context.Context, n export.Node, name string, a export.FileInfo) (export.Node, error) {
	child, err := childOf(n, name)
	if err != nil {
		return nil, err
	}
	dirfd, _, err := t.at(child)
	if err != nil {
		return nil, err
	}
	defer t.f.release(dirfd)
	if err := unix.Mkdirat(dirfd, name, 0o700); err != nil {
		return nil, t.f.wrap("mkdir", child.String(), err)
	}
	fd, err := openAt(dirfd, name)
	if err != nil {
		return nil, t.f.wrap("open", child.String(), err)
	}
	defer unix.Close(fd)
	if err := fchown(fd, int(a.UID), int(a.GID)); err != nil {
		return nil, t.f.wrap("chown", child.String(), err)
	}
	return child, nil
}

func (t *tree) Create(ctx context.Context, n export.Node, name string, a export.FileInfo) (export.Node, error) {
	child, err := childOf(n, name)
	if err != nil {
		return nil, err
	}
	fd, err := t.open(child, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := fchown(fd, int(a.UID), int(a.GID)); err != nil {
		return nil, t.f.wrap("chown", child.String(), err)
	}
	return child, nil
}

func (t *tree) WriteAt(ctx context.Context, n export.Node, p []byte, off uint64, _ bool) error {
	fd, err := t.open(n, unix.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for len(p) > 0 {
		m, err := unix.Pwrite(fd, p, int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		p, off = p[m:], off+uint64(m)
	}
	return nil
}

func (t *tree) Symlink(ctx context.Context, n export.Node, name, target string, a export.FileInfo) error {
	child, err := childOf(n, name)
	if err != nil {
		return err
	}
	dirfd, _, err := t.at(child)
	if err != nil {
		return err
	}
	defer t.f.release(dirfd)
	if err := unix.Symlinkat(target, dirfd, name); err != nil {
		return t.f.wrap("symlink", child.String(), err)
	}
	if err := unix.Fchownat(dirfd, name, int(a.UID), int(a.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return t.f.wrap("chown", child.String(), err)
	}
	if err := unix.UtimesNanoAt(dirfd, name, timespecs(a), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return t.f.wrap("set times of", child.String(), err)
	}
	return nil
}

// Finish flushes a file's data (fdatasync: COMMIT on an NFS mount), sets its size when a hole
// ends it, and sets owner, then mode (chown may clear setuid and setgid), then times.
func (t *tree) Finish(ctx context.Context, n export.Node, a export.FileInfo) error {
	flags := unix.O_RDONLY | unix.O_DIRECTORY
	if a.Type == export.TypeFile {
		flags = unix.O_WRONLY
	}
	fd, err := t.open(n, flags, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	node, _ := nodeOf(n)
	p := node.String()
	if a.Type == export.TypeFile {
		if err := unix.Ftruncate(fd, int64(a.Size)); err != nil {
			return t.f.wrap("truncate", p, err)
		}
		if err := unix.Fdatasync(fd); err != nil {
			return t.f.wrap("sync", p, err)
		}
	}
	if err := fchown(fd, int(a.UID), int(a.GID)); err != nil {
		return t.f.wrap("chown", p, err)
	}
	if err := unix.Fchmod(fd, uint32(a.Mode)&0o7777); err != nil {
		return t.f.wrap("chmod", p, err)
	}
	// By name in its parent, not following a link: the descriptor was opened the same way.
	dirfd, name, err := t.at(n)
	if err != nil {
		return err
	}
	defer t.f.release(dirfd)
	if err := unix.UtimesNanoAt(dirfd, name, timespecs(a), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return t.f.wrap("set times of", p, err)
	}
	return nil
}

// IOSize is what one read or write moves; the kernel client splits it as its mount says.
func (t *tree) IOSize(context.Context) (int, error) { return 1 << 20, nil }

func timespecs(a export.FileInfo) []unix.Timespec {
	return []unix.Timespec{unix.NsecToTimespec(a.Atime.UnixNano()), unix.NsecToTimespec(a.Mtime.UnixNano())}
}

func fileInfo(st *unix.Stat_t) export.FileInfo {
	i := export.FileInfo{Mode: export.Mode(st.Mode) & export.ModeMask, UID: st.Uid, GID: st.Gid, Size: uint64(st.Size), Links: uint32(st.Nlink),
		Atime: time.Unix(st.Atim.Sec, st.Atim.Nsec), Mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec)}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		i.Type = export.TypeDir
	case unix.S_IFREG:
		i.Type = export.TypeFile
	case unix.S_IFLNK:
		i.Type = export.TypeSymlink
	}
	return i
}
