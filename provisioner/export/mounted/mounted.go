// Package mounted implements export.FS on a directory where the export is
// already mounted (the nfs-subdir-external-provisioner model), for servers
// that speak only NFSv4 such as AWS EFS or Azure Files NFS. Every operation
// goes through os.Root, so no path — and no symlink a user planted in the
// export — can lead outside the mounted directory.
package mounted

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/nfs-subdir/provisioner/provisioner/export"
)

// Opener serves the one export mounted at Root.
type Opener struct {
	root          *os.Root
	dir           string
	server, share string
}

// New opens dir, where server:share is mounted.
func New(dir, server, share string) (*Opener, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open mount root %s: %w", dir, err)
	}
	return &Opener{root: root, dir: dir, server: server, share: share}, nil
}

// Open returns the mounted FS when server and share are the mounted ones.
func (o *Opener) Open(_ context.Context, server, share string) (export.FS, error) {
	if !strings.EqualFold(server, o.server) || strings.TrimRight(share, "/") != strings.TrimRight(o.share, "/") {
		return nil, fmt.Errorf("the mounted backend serves only %s:%s (mounted at %s), not %s:%s; remove the class's server/share parameters or run with --backend=wire",
			o.server, o.share, o.dir, server, share)
	}
	return &FS{root: o.root, name: o.dir}, nil
}

// Close releases the mount root.
func (o *Opener) Close() error { return o.root.Close() }

// FS is export.FS on a local directory.
type FS struct {
	root *os.Root
	name string
}

// NewFS returns an FS on an already opened root; for tests and tools.
func NewFS(root *os.Root) *FS { return &FS{root: root, name: root.Name()} }

var _ export.FS = (*FS)(nil)

// MkdirAll implements export.FS. Directories are created one level at a
// time so that each new one gets exactly attrs (chown first: chown may clear
// setgid bits, chmod then sets them).
func (f *FS) MkdirAll(ctx context.Context, dir string, attrs export.DirAttrs) error {
	if err := export.CheckPath(dir, false); err != nil {
		return err
	}
	elems := strings.Split(dir, "/")
	for i := range elems {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := strings.Join(elems[:i+1], "/")
		err := f.root.Mkdir(p, 0o700)
		if errors.Is(err, fs.ErrExist) {
			info, serr := f.root.Stat(p)
			if serr != nil {
				return f.wrap("stat", p, serr)
			}
			if !info.IsDir() {
				return fmt.Errorf("mkdir %s in %s: %s exists and %w", dir, f.name, p, export.ErrNotDir)
			}
			continue
		}
		if err != nil {
			return f.wrap("mkdir", p, err)
		}
		if err := f.root.Chown(p, int(attrs.UID), int(attrs.GID)); err != nil {
			return f.wrap("chown", p, err)
		}
		if err := f.root.Chmod(p, unixMode(attrs.Mode)); err != nil {
			return f.wrap("chmod", p, err)
		}
	}
	return nil
}

// Rename implements export.FS. The existence check and the rename are two
// steps: kernel NFS clients do not support RENAME_NOREPLACE. Only one
// provisioner instance acts at a time (leader election), so the window is
// not reachable by our own operations.
func (f *FS) Rename(ctx context.Context, from, to string) error {
	if err := export.CheckPath(from, false); err != nil {
		return err
	}
	if err := export.CheckPath(to, false); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := f.root.Lstat(to); err == nil {
		return fmt.Errorf("rename %s to %s in %s: %w", from, to, f.name, export.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return f.wrap("stat", to, err)
	}
	if err := f.root.Rename(from, to); err != nil {
		return f.wrap("rename "+from+" to", to, err)
	}
	return nil
}

// RemoveAll implements export.FS.
func (f *FS) RemoveAll(ctx context.Context, p string) error {
	if err := export.CheckPath(p, false); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.root.RemoveAll(p); err != nil {
		return f.wrap("remove", p, err)
	}
	return nil
}

// Stat implements export.FS.
func (f *FS) Stat(ctx context.Context, p string) (export.Info, error) {
	if err := export.CheckPath(p, true); err != nil {
		return export.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return export.Info{}, err
	}
	fi, err := f.root.Stat(p)
	if err != nil {
		return export.Info{}, f.wrap("stat", p, err)
	}
	info := export.Info{IsDir: fi.IsDir(), Mode: permBits(fi.Mode())}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		info.UID, info.GID = st.Uid, st.Gid
	}
	return info, nil
}

// wrap maps OS errors onto the export errors, keeping the detail.
func (f *FS) wrap(op, p string, err error) error {
	var kind error
	switch {
	case errors.Is(err, fs.ErrNotExist):
		kind = export.ErrNotExist
	case errors.Is(err, fs.ErrExist), errors.Is(err, syscall.ENOTEMPTY):
		kind = export.ErrExist
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EPERM):
		kind = export.ErrPermission
	case errors.Is(err, syscall.ENOTDIR):
		kind = export.ErrNotDir
	default:
		return fmt.Errorf("%s %s in %s: %w", op, p, f.name, err)
	}
	return fmt.Errorf("%s %s in %s: %w (%v)", op, p, f.name, kind, err)
}

// unixMode converts plain 07777 bits to an os.FileMode, whose setuid,
// setgid and sticky bits live elsewhere.
func unixMode(m os.FileMode) os.FileMode {
	out := m & 0o777
	if m&0o4000 != 0 {
		out |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= os.ModeSticky
	}
	return out
}

// permBits is the inverse of unixMode.
func permBits(m os.FileMode) os.FileMode {
	out := m.Perm()
	if m&os.ModeSetuid != 0 {
		out |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		out |= 0o1000
	}
	return out
}
