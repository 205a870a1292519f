package mounted

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// Tree is the export's objects for export.CopyTree. A node is a path
// below the mount, walked again by each operation one component at a time
// without following a symlink anywhere (O_NOFOLLOW), so a directory
// swapped for a link during a copy is an error, never a way out.
func (f *FS) Tree() export.Tree { return &tree{f: f} }

type tree struct{ f *FS }

// treeNode is a path relative to the mount root, "." for the root.
type treeNode string

// listingBytes is one getdents buffer: one page of a listing.
const listingBytes = 32 << 10

func nodeOf(n export.Node) (string, error) {
	p, ok := n.(treeNode)
	if !ok {
		return "", fmt.Errorf("%w: not a node of this backend (%T)", export.ErrInvalidPath, n)
	}
	return string(p), nil
}

// childOf is the node of name in the directory n; name must be one path element, as the *at
// calls below use it in the directory at() opens.
func childOf(n export.Node, name string) (treeNode, error) {
	parent, err := nodeOf(n)
	if err != nil {
		return "", err
	}
	if strings.Contains(name, "/") || name == "." || name == ".." {
		return "", fmt.Errorf("%w: %q is not a name in a directory", export.ErrInvalidPath, name)
	}
	child := treeNode(path.Join(parent, name))
	if _, err := export.SplitPath(string(child), false); err != nil {
		return "", err
	}
	return child, nil
}

// at opens the parent of node with O_PATH and returns the name in it; the caller releases it.
func (t *tree) at(n export.Node) (dirfd int, name string, err error) {
	p, err := nodeOf(n)
	if err != nil {
		return -1, "", err
	}
	elems, err := export.SplitPath(p, true)
	if err != nil {
		return -1, "", err
	}
	if len(elems) == 0 {
		return -1, "", fmt.Errorf("%w: the export root is not a file", export.ErrInvalidPath)
	}
	dirfd, err = t.f.walk(elems[:len(elems)-1])
	return dirfd, elems[len(elems)-1], err
}

// open opens node (O_NOFOLLOW) with flags and returns its descriptor.
func (t *tree) open(n export.Node, flags int, mode uint32) (int, error) {
	p, err := nodeOf(n)
	if err != nil {
		return -1, err
	}
	if p == "." {
		return unix.FcntlInt(uintptr(t.f.root), unix.F_DUPFD_CLOEXEC, 0)
	}
	dirfd, name, err := t.at(n)
	if err != nil {
		return -1, err
	}
	defer t.f.release(dirfd)
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return -1, t.f.wrap("open", p, err)
	}
	return fd, nil
}

func (t *tree) OpenDir(ctx context.Context, dir string) (export.Node, export.FileInfo, error) {
	if _, err := export.SplitPath(dir, true); err != nil {
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
	return treeNode(path.Clean(dir)), fileInfo(&st), nil
}

func (t *tree) ReadDir(ctx context.Context, n export.Node, at export.DirCursor) ([]export.DirEntry, export.DirCursor, bool, error) {
	p, err := nodeOf(n)
	if err != nil {
		return nil, at, false, err
	}
	fd, err := t.f.openTree(ctx, p)
	if err != nil {
		return nil, at, false, err
	}
	defer unix.Close(fd)
	if _, err := unix.Seek(fd, int64(at.Cookie), 0); err != nil {
		return nil, at, false, t.f.wrap("seek in", p, err)
	}
	buf := make([]byte, listingBytes)
	got, err := unix.Getdents(fd, buf)
	if err != nil {
		return nil, at, false, t.f.wrap("list", p, err)
	}
	if got == 0 {
		return nil, at, true, nil
	}
	var ents []export.DirEntry
	next := at
	for b := buf[:got]; ; {
		d, rest, ok, err := nextDirent(b)
		if err != nil {
			return nil, at, false, t.f.wrap("list", p, err)
		}
		if !ok {
			break
		}
		b, next.Cookie = rest, uint64(d.next)
		if d.name == "." || d.name == ".." {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, d.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // gone since the listing
		}
		ents = append(ents, export.DirEntry{Name: d.name, Node: treeNode(path.Join(p, d.name)), Info: fileInfo(&st), Next: next})
	}
	return ents, next, false, nil
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
		return nil, t.f.wrap("mkdir", string(child), err)
	}
	fd, err := openAt(dirfd, name)
	if err != nil {
		return nil, t.f.wrap("open", string(child), err)
	}
	defer unix.Close(fd)
	if err := fchown(fd, int(a.UID), int(a.GID)); err != nil {
		return nil, t.f.wrap("chown", string(child), err)
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
		return nil, t.f.wrap("chown", string(child), err)
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
		return t.f.wrap("symlink", string(child), err)
	}
	if err := unix.Fchownat(dirfd, name, int(a.UID), int(a.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return t.f.wrap("chown", string(child), err)
	}
	if err := unix.UtimesNanoAt(dirfd, name, timespecs(a), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return t.f.wrap("set times of", string(child), err)
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
	p, _ := nodeOf(n)
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
