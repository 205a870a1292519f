// Package mounted implements export.FS on a directory where the export is
// already mounted (the nfs-subdir-external-provisioner model), for servers
// that speak only NFSv4 such as AWS EFS or Azure Files NFS.
//
// Every operation works on directory descriptors: a path is resolved one
// component at a time with openat(O_DIRECTORY|O_NOFOLLOW) from the mount
// root, owner and mode are set with fchown/fchmod on the descriptor of the
// directory just made, entries are removed with unlinkat in their parent's
// descriptor. No symlink below the mount root is ever followed — not one
// planted beforehand in a path, not one swapped in for a directory between
// two steps — so a pod that writes its own directory cannot make the
// provisioner act on anything else. Linux only.
package mounted

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// Opener serves the one export mounted at a directory.
type Opener struct {
	fs     *FS
	target export.Target
}

// New opens dir, where server:share is mounted.
func New(dir, server, share string) (*Opener, error) {
	fsys, err := OpenDir(dir)
	if err != nil {
		return nil, err
	}
	return &Opener{fs: fsys, target: export.NewTarget(server, share)}, nil
}

// Open returns the mounted FS when server and share are the mounted ones.
func (o *Opener) Open(_ context.Context, server, share string) (export.FS, error) {
	if export.NewTarget(server, share) != o.target {
		return nil, fmt.Errorf("the mounted backend serves only %s (mounted at %s), not %s:%s; remove the class's server/share parameters or run with --backend=wire",
			o.target, o.fs.name, server, share)
	}
	return o.fs, nil
}

// Close releases the mount root.
func (o *Opener) Close() error { return o.fs.Close() }

// FS is export.FS on a local directory.
type FS struct {
	root int // O_DIRECTORY descriptor of the mount root
	name string
}

var _ export.FS = (*FS)(nil)

// OpenDir returns an FS on the directory dir.
func OpenDir(dir string) (*FS, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open mount root %s: %w", dir, err)
	}
	return &FS{root: fd, name: dir}, nil
}

// Close releases the root descriptor.
func (f *FS) Close() error { return unix.Close(f.root) }

const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// openAt opens the directory name in dir without following a symlink; a
// symlink or other non-directory there is ENOTDIR.
func openAt(dir int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dir, name, dirFlags, 0)
		switch err {
		case nil:
			return fd, nil
		case unix.EINTR:
			continue
		case unix.ELOOP:
			return -1, unix.ENOTDIR
		}
		return -1, err
	}
}

// pathFlags open a directory only to resolve names in it: search
// permission is enough (a shared parent may be 0711).
const pathFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// openPath opens the directory name in dir with O_PATH, without following
// a symlink (ENOTDIR for one).
func openPath(dir int, name string) (int, error) {
	fd, err := unix.Openat(dir, name, pathFlags, 0)
	if err == unix.ELOOP {
		return -1, unix.ENOTDIR
	}
	return fd, err
}

// walk opens the directory at elems (the root for none) with O_PATH: good
// for *at calls, not for reading it or changing its attributes. The caller
// closes the result unless it is f.root.
func (f *FS) walk(elems []string) (int, error) {
	fd := f.root
	for i, e := range elems {
		next, err := openPath(fd, e)
		f.release(fd)
		if err != nil {
			return -1, f.wrap("open", strings.Join(elems[:i+1], "/"), err)
		}
		fd = next
	}
	return fd, nil
}

// release closes fd unless it is the root.
func (f *FS) release(fd int) {
	if fd != f.root && fd >= 0 {
		unix.Close(fd)
	}
}

// MkdirAll implements export.FS, one component at a time.
func (f *FS) MkdirAll(ctx context.Context, dir string, attrs export.DirAttrs) error {
	elems, err := export.SplitPath(dir, false)
	if err != nil {
		return err
	}
	fd := f.root
	defer func() { f.release(fd) }()
	for i, e := range elems {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := strings.Join(elems[:i+1], "/")
		next, err := openPath(fd, e)
		if errors.Is(err, unix.ENOENT) {
			next, err = f.mkdirIn(fd, e, p, attrs)
			if errors.Is(err, export.ErrExist) { // made by someone else meanwhile
				next, err = openPath(fd, e)
			}
		}
		if err != nil {
			return f.wrap("mkdir", p, err)
		}
		f.release(fd)
		fd = next
	}
	return nil
}

// parentOf checks p (not the root) and opens its parent: the caller
// releases parent and works on name in it.
func (f *FS) parentOf(ctx context.Context, p string) (parent int, name string, err error) {
	elems, err := export.SplitPath(p, false)
	if err != nil {
		return -1, "", err
	}
	if err := ctx.Err(); err != nil {
		return -1, "", err
	}
	parent, err = f.walk(elems[:len(elems)-1])
	if err != nil {
		return -1, "", err
	}
	return parent, elems[len(elems)-1], nil
}

// Mkdir implements export.FS.
func (f *FS) Mkdir(ctx context.Context, dir string, attrs export.DirAttrs) error {
	parent, name, err := f.parentOf(ctx, dir)
	if err != nil {
		return err
	}
	defer f.release(parent)
	fd, err := f.mkdirIn(parent, name, dir, attrs)
	if err != nil {
		return err
	}
	unix.Close(fd)
	return nil
}

// mkdirIn makes name in parent with attrs and returns its descriptor.
// Owner and mode are set on the descriptor, never by path (chown first:
// chown may clear setgid, chmod then sets it). A directory that cannot
// be given attrs is removed again, so no retry finds a half-made one.
func (f *FS) mkdirIn(parent int, name, p string, attrs export.DirAttrs) (int, error) {
	if err := unix.Mkdirat(parent, name, 0o700); err != nil {
		return -1, f.wrap("mkdir", p, err)
	}
	fd, err := openAt(parent, name)
	if err != nil {
		// Replaced by something that is not a directory since the mkdir:
		// not ours any more; leave it.
		return -1, f.wrap("open new directory", p, err)
	}
	if err := setAttrs(fd, attrs); err != nil {
		unix.Close(fd)
		rerr := unix.Unlinkat(parent, name, unix.AT_REMOVEDIR)
		return -1, f.wrap(fmt.Sprintf("set owner %d:%d and mode %04o of new directory (removed again: %v)", attrs.UID, attrs.GID, attrs.Mode, rerr), p, err)
	}
	return fd, nil
}

// fchown is unix.Fchown; tests make it fail.
var fchown = unix.Fchown

func setAttrs(fd int, attrs export.DirAttrs) error {
	if err := fchown(fd, int(attrs.UID), int(attrs.GID)); err != nil {
		return err
	}
	return unix.Fchmod(fd, uint32(attrs.Mode)&0o7777)
}

// SetAttrs implements export.FS.
func (f *FS) SetAttrs(ctx context.Context, dir string, attrs export.DirAttrs) error {
	parent, name, err := f.parentOf(ctx, dir)
	if err != nil {
		return err
	}
	defer f.release(parent)
	fd, err := openAt(parent, name)
	if err != nil {
		return f.wrap("open", dir, err)
	}
	defer unix.Close(fd)
	if err := setAttrs(fd, attrs); err != nil {
		return f.wrap("set owner and mode of", dir, err)
	}
	return nil
}

// Rename implements export.FS. Kernel NFS clients do not support
// RENAME_NOREPLACE; there the existence check and the rename are two
// steps, and only one provisioner instance acts at a time (leader
// election), so the window is not reachable by our own operations.
func (f *FS) Rename(ctx context.Context, from, to string) error {
	fe, err := export.SplitPath(from, false)
	if err != nil {
		return err
	}
	te, err := export.SplitPath(to, false)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fromDir, err := f.walk(fe[:len(fe)-1])
	if err != nil {
		return err
	}
	defer f.release(fromDir)
	toDir, err := f.walk(te[:len(te)-1])
	if err != nil {
		return err
	}
	defer f.release(toDir)
	fromName, toName := fe[len(fe)-1], te[len(te)-1]
	err = unix.Renameat2(fromDir, fromName, toDir, toName, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOTSUP) {
		var st unix.Stat_t
		if serr := unix.Fstatat(toDir, toName, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil {
			return fmt.Errorf("rename %s to %s in %s: %w", from, to, f.name, export.ErrExist)
		} else if !errors.Is(serr, unix.ENOENT) {
			return f.wrap("stat", to, serr)
		}
		err = unix.Renameat(fromDir, fromName, toDir, toName)
	}
	if err != nil {
		return f.wrap("rename "+from+" to", to, err)
	}
	return nil
}

// Stat implements export.FS. A symlink is described, not followed.
func (f *FS) Stat(ctx context.Context, p string) (export.Info, error) {
	elems, err := export.SplitPath(p, true)
	if err != nil {
		return export.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return export.Info{}, err
	}
	var st unix.Stat_t
	dirfd, name, flags := f.root, "", unix.AT_EMPTY_PATH
	if len(elems) > 0 {
		if dirfd, err = f.walk(elems[:len(elems)-1]); err != nil {
			return export.Info{}, err
		}
		defer f.release(dirfd)
		name, flags = elems[len(elems)-1], 0
	}
	if err := unix.Fstatat(dirfd, name, &st, flags|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return export.Info{}, f.wrap("stat", p, err)
	}
	return export.Info{IsDir: st.Mode&unix.S_IFMT == unix.S_IFDIR, Mode: export.Mode(st.Mode) & export.ModeMask, UID: st.Uid, GID: st.Gid,
		ID: objectID(dirfd, name, flags, &st)}, nil
}

// objectID is the kernel's file handle of name in dirfd (name_to_handle_at, which does not
// follow a symlink and holds the inode's generation, so a reused inode number gets another), or,
// on a file system without handles, its device, inode number and change time.
func objectID(dirfd int, name string, flags int, st *unix.Stat_t) string {
	if h, _, err := unix.NameToHandleAt(dirfd, name, flags); err == nil {
		return fmt.Sprintf("%x-%s", h.Type(), hex.EncodeToString(h.Bytes()))
	}
	return fmt.Sprintf("dev%d-ino%d-ctime%d.%d", st.Dev, st.Ino, st.Ctim.Sec, st.Ctim.Nsec)
}

// wrap maps an OS error onto the export errors, keeping the errno; an
// error that is not a bare errno (already wrapped) is returned as it is.
func (f *FS) wrap(op, p string, err error) error {
	var wrapped osError
	var errno unix.Errno
	if errors.As(err, &wrapped) || !errors.As(err, &errno) {
		return err
	}
	var kind error
	switch errno {
	case unix.ENOENT:
		kind = export.ErrNotExist
	case unix.EEXIST, unix.ENOTEMPTY:
		kind = export.ErrExist
	case unix.EACCES, unix.EPERM, unix.EROFS:
		kind = export.ErrPermission
	case unix.ENOTDIR, unix.ELOOP:
		kind = export.ErrNotDir
	case unix.ENAMETOOLONG:
		kind = export.ErrInvalidPath
	default:
		return fmt.Errorf("%s %s in %s: %w", op, p, f.name, osError{errno})
	}
	return fmt.Errorf("%s %s in %s: %w (%w)", op, p, f.name, kind, osError{errno})
}

// osError is an errno from the mounted filesystem. Unless it says the
// mount timed out or lost its server, it is the server's answer. EIO is
// what a soft NFS mount returns when its server stops answering, so it
// is not counted as an answer here.
type osError struct{ errno unix.Errno }

func (e osError) Error() string { return e.errno.Error() }
func (e osError) Unwrap() error { return e.errno }
func (e osError) Is(target error) bool {
	if target != export.ErrServerReply {
		return false
	}
	switch e.errno {
	case unix.ETIMEDOUT, unix.ENOTCONN, unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EINTR, unix.EIO:
		return false
	}
	return true
}

// Capacity implements export.FS with fstatfs of the mount root.
func (f *FS) Capacity(ctx context.Context) (export.Capacity, error) {
	if err := ctx.Err(); err != nil {
		return export.Capacity{}, err
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(f.root, &st); err != nil {
		return export.Capacity{}, f.wrap("statfs", ".", err)
	}
	bs := uint64(st.Bsize)
	return export.Capacity{SizeBytes: st.Blocks * bs, FreeBytes: st.Bfree * bs, AvailableBytes: st.Bavail * bs,
		TotalInodes: st.Files, FreeInodes: st.Ffree}, nil
}
