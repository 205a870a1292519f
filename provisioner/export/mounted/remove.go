package mounted

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// maxStack bounds the open directories of one RemoveAll; a deeper tree is finished by walking
// again from the top.
const maxStack = 128

// RemoveAll implements export.FS with export.RemoveAll over directory descriptors: entries are
// removed with unlinkat in their parent's descriptor, a symlink is removed, never followed, and at
// most maxStack directories are open at once.
func (f *FS) RemoveAll(ctx context.Context, p string, progress func(export.Removed)) error {
	counted := export.NewRemoveProgress(progress)
	err := export.RemoveAll(ctx, removeTree{f}, p, export.RemoveOptions{MaxDepth: maxStack, Progress: counted})
	counted.Report(true)
	if err != nil {
		return f.wrap("remove", p, err)
	}
	return nil
}

// removeTree is export.RemoveTree on descriptors: a node is a dirFD.
type removeTree struct{ f *FS }

// dirFD is an open directory: O_PATH for a parent, readable for one being emptied.
type dirFD int

func fdOf(n export.Node) (int, error) {
	fd, ok := n.(dirFD)
	if !ok {
		return -1, fmt.Errorf("%w: not a node of this backend (%T)", export.ErrInvalidPath, n)
	}
	return int(fd), nil
}

func (t removeTree) Parent(ctx context.Context, p string) (export.Node, error) {
	elems, err := export.SplitPath(p, false)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fd, err := t.f.walk(elems[:len(elems)-1])
	if err != nil {
		return nil, err
	}
	return dirFD(fd), nil
}

// Open opens the directory name in dir without following a symlink. A directory its owner may
// not read is first made u+rwx through an O_PATH descriptor (by the exact inode, never by path).
func (t removeTree) Open(ctx context.Context, dir export.Node, name string, _ *export.RemoveEntry) (export.Node, bool, error) {
	parent, err := fdOf(dir)
	if err != nil {
		return nil, false, err
	}
	fd, err := openAt(parent, name)
	if errors.Is(err, unix.EACCES) {
		if pfd, perr := unix.Openat(parent, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); perr == nil {
			var st unix.Stat_t
			if unix.Fstat(pfd, &st) == nil {
				unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", pfd), (st.Mode&0o7777)|0o700)
			}
			unix.Close(pfd)
			fd, err = openAt(parent, name)
		}
	}
	switch {
	case errors.Is(err, unix.ENOTDIR):
		return nil, false, nil
	case err != nil:
		return nil, false, t.f.wrap("open", name, err)
	}
	return dirFD(fd), true, nil
}

// List reads one getdents buffer of dir from at; the kernel says each entry's type, or fstatat
// (not following a symlink) does.
func (t removeTree) List(ctx context.Context, dir export.Node, at export.DirCursor) ([]export.RemoveEntry, export.DirCursor, bool, error) {
	fd, err := fdOf(dir)
	if err != nil {
		return nil, at, false, err
	}
	if err := ctx.Err(); err != nil {
		return nil, at, false, err
	}
	var ents []export.RemoveEntry
	next, eof, err := readPage(fd, at.Cookie, func(d dirent, next uint64) error {
		if isDir, gone := direntIsDir(fd, d); !gone {
			ents = append(ents, export.RemoveEntry{Name: d.name, Dir: isDir, Next: export.DirCursor{Cookie: next}})
		}
		return nil
	})
	if err != nil {
		return nil, at, false, err
	}
	return ents, export.DirCursor{Cookie: next}, eof, nil
}

func (t removeTree) Unlink(ctx context.Context, dir export.Node, name string) error {
	fd, err := fdOf(dir)
	if err != nil {
		return err
	}
	switch err := unix.Unlinkat(fd, name, 0); err {
	case nil:
		return nil
	case unix.EISDIR:
		return fmt.Errorf("unlink %s: %w", name, export.ErrIsDir)
	default:
		return t.f.wrap("unlink", name, err) // ENOENT is export.ErrNotExist
	}
}

func (t removeTree) Rmdir(ctx context.Context, dir export.Node, name string) error {
	fd, err := fdOf(dir)
	if err != nil {
		return err
	}
	switch err := unix.Unlinkat(fd, name, unix.AT_REMOVEDIR); err {
	case nil:
		return nil
	case unix.ENOTEMPTY, unix.EEXIST:
		return fmt.Errorf("rmdir %s: %w", name, export.ErrNotEmpty)
	default:
		return t.f.wrap("rmdir", name, err)
	}
}

func (t removeTree) Close(n export.Node) {
	if fd, err := fdOf(n); err == nil {
		t.f.release(fd)
	}
}

// direntIsDir tells whether the entry d of the directory dirfd is a directory, asking with
// fstatat (not following a symlink) when the file system does not say; gone when it no longer
// exists.
func direntIsDir(dirfd int, d dirent) (isDir, gone bool) {
	if d.typ != unix.DT_UNKNOWN {
		return d.typ == unix.DT_DIR, false
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, d.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, true
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR, false
}
