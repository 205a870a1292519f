// Package exporttest is the contract every export.FS implementation passes,
// in the spirit of testing/fstest: one exported function, run by each
// backend's own tests against a real server or directory.
package exporttest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// Options describes the export under test.
type Options struct {
	// Owner is who the test creates directories as. On a root_squash export
	// it must be the owner of the export root (root is squashed); elsewhere
	// any uid/gid works and root (0/0) is the usual choice.
	Owner export.DirAttrs

	// ChecksCredentials is true when the server enforces AUTH_SYS
	// permissions (Ganesha, a local filesystem as non-root). When true the
	// permission cases run: a directory owned by someone else with mode
	// 0700 cannot be entered by another uid.
	ChecksCredentials bool

	// Squashed is true for a root_squash export: creating a root-owned
	// directory must fail with ErrPermission or end up not owned by root.
	Squashed bool

	// Populate writes a regular file at path (relative to the export root)
	// through some independent route (the local backing directory, or the
	// NFS client library directly). The contract's remove/rename cases need
	// files that only users create.
	Populate func(t *testing.T, path string, data []byte)

	// Symlink makes a symbolic link at path (relative to the export root)
	// holding target, through an independent route, as a tenant's pod
	// would. The symlink cases need it.
	Symlink func(t *testing.T, path, target string)

	// Swap replaces the directory at path by a symlink holding target, as
	// a hostile pod that can write its parent would (move it away, link
	// in its place), and reports whether it found one to replace. It is
	// called in a loop while the backend creates path.
	Swap func(path, target string) bool

	// Statfs, when set, gives the backing filesystem's figures, which
	// Capacity must match within 1 %.
	Statfs func(t *testing.T) export.Capacity

	// NoSpecialModes is true for a server that cannot store the setuid,
	// setgid and sticky bits (the in-process go-nfs server masks modes with
	// 0777). The mode cases then check only the permission bits of those
	// modes. Real servers (Ganesha, a local filesystem) must leave it false.
	NoSpecialModes bool

	// RenameChangesID says the server's file handles name paths (go-nfs's do), so that a rename
	// gives the object another ID; the contract then checks only that IDs tell objects apart.
	RenameChangesID bool
	// Timeout bounds each operation; 0 means 30s.
	Timeout time.Duration
}

// Run runs the whole contract against fsys. Every case works below a fresh
// directory of its own so cases are independent and the export root is
// never touched except for the root checks.
func Run(t *testing.T, fsys export.FS, opt Options) {
	t.Helper()
	if opt.Timeout == 0 {
		opt.Timeout = 30 * time.Second
	}
	base := fmt.Sprintf("contract-%d", time.Now().UnixNano())
	c := &contract{fsys: fsys, opt: opt, base: base}
	ctx, cancel := c.ctx()
	defer cancel()
	if err := fsys.MkdirAll(ctx, base, withMode(opt.Owner, 0o777)); err != nil {
		t.Fatalf("MkdirAll(%q): %v", base, err)
	}
	t.Cleanup(func() {
		ctx, cancel := c.ctx()
		defer cancel()
		if err := fsys.RemoveAll(ctx, base, nil); err != nil {
			t.Errorf("cleanup RemoveAll(%q): %v", base, err)
		}
	})

	t.Run("MkdirAllNestedOwnerMode", c.mkdirAllNestedOwnerMode)
	t.Run("MkdirAllExisting", c.mkdirAllExisting)
	t.Run("MkdirAllOverFile", c.mkdirAllOverFile)
	t.Run("MkdirAllModes", c.mkdirAllModes)
	t.Run("StatMissing", c.statMissing)
	t.Run("StatRoot", c.statRoot)
	t.Run("RenameToFreeName", c.renameToFreeName)
	t.Run("IDKeptByRename", c.idKeptByRename)
	t.Run("RenameOntoTakenName", c.renameOntoTakenName)
	t.Run("RenameOntoEmptyDir", c.renameOntoEmptyDir)
	t.Run("RenameMissing", c.renameMissing)
	t.Run("RemoveAllTree", c.removeAllTree)
	t.Run("RemoveAllMissing", c.removeAllMissing)
	t.Run("RemoveAllRootRefused", c.removeAllRootRefused)
	t.Run("InvalidPaths", c.invalidPaths)
	t.Run("Concurrent", c.concurrent)
	t.Run("MkdirExclusive", c.mkdirExclusive)
	t.Run("Capacity", c.capacity)
	t.Run("Usage", c.usage)
	t.Run("SetAttrs", c.setAttrs)
	t.Run("RemoveAllDeep", c.removeAllDeep)
	t.Run("RemoveAllErrorShort", c.removeAllErrorShort)
	t.Run("CopyTreeExact", c.copyTreeExact)
	t.Run("CopyTreeOntoExisting", c.copyTreeOntoExisting)
	if opt.Symlink != nil {
		t.Run("SymlinkComponent", c.symlinkComponent)
		t.Run("RemoveAllSymlinks", c.removeAllSymlinks)
		t.Run("CopyTreeSymlinkSource", c.copyTreeSymlinkSource)
	}
	if opt.Swap != nil {
		t.Run("SymlinkSwap", c.symlinkSwap)
		t.Run("CopyTreeSwap", c.copyTreeSwap)
	}
	if opt.ChecksCredentials {
		t.Run("PermissionDenied", c.permissionDenied)
	}
	if opt.Squashed {
		t.Run("RootSquashed", c.rootSquashed)
	}
}

type contract struct {
	fsys export.FS
	opt  Options
	base string
}

func (c *contract) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.opt.Timeout)
}

func (c *contract) path(t *testing.T, elem ...string) string {
	p := c.base + "/" + sanitize(t.Name())
	for _, e := range elem {
		p += "/" + e
	}
	return p
}

func sanitize(name string) string {
	b := []byte(name)
	for i, ch := range b {
		if ch == '/' || ch == ' ' {
			b[i] = '_'
		}
	}
	return string(b)
}

func withMode(a export.DirAttrs, mode uint32) export.DirAttrs {
	a.Mode = export.Mode(mode)
	return a
}

func (c *contract) mkdir(t *testing.T, p string, attrs export.DirAttrs) {
	t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	if err := c.fsys.MkdirAll(ctx, p, attrs); err != nil {
		t.Fatalf("MkdirAll(%q, %+v): %v", p, attrs, err)
	}
}

func (c *contract) stat(t *testing.T, p string) export.Info {
	t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	info, err := c.fsys.Stat(ctx, p)
	if err != nil {
		t.Fatalf("Stat(%q): %v", p, err)
	}
	return info
}

func (c *contract) statErr(p string) error {
	ctx, cancel := c.ctx()
	defer cancel()
	_, err := c.fsys.Stat(ctx, p)
	return err
}

func (c *contract) mkdirAllNestedOwnerMode(t *testing.T) {
	attrs := withMode(c.opt.Owner, 0o750)
	leaf := c.path(t, "a", "b", "c")
	c.mkdir(t, leaf, attrs)
	for _, p := range []string{c.path(t), c.path(t, "a"), c.path(t, "a", "b"), leaf} {
		info := c.stat(t, p)
		if !info.IsDir {
			t.Errorf("%s: not a directory", p)
		}
		if info.Mode != attrs.Mode || info.UID != attrs.UID || info.GID != attrs.GID {
			t.Errorf("%s: got mode %o uid %d gid %d, want mode %o uid %d gid %d",
				p, info.Mode, info.UID, info.GID, attrs.Mode, attrs.UID, attrs.GID)
		}
	}
}

func (c *contract) mkdirAllExisting(t *testing.T) {
	p := c.path(t, "dir")
	first := withMode(c.opt.Owner, 0o755)
	c.mkdir(t, p, first)
	// A second call with other attrs succeeds and leaves the directory alone:
	// a retried provision must not fail, and must not re-chmod user data.
	c.mkdir(t, p, withMode(c.opt.Owner, 0o700))
	if got := c.stat(t, p).Mode; got != first.Mode {
		t.Errorf("existing dir mode changed to %o, want %o", got, first.Mode)
	}
}

func (c *contract) mkdirAllOverFile(t *testing.T) {
	dir := c.path(t)
	c.mkdir(t, dir, withMode(c.opt.Owner, 0o777))
	c.opt.Populate(t, dir+"/file", []byte("data"))
	ctx, cancel := c.ctx()
	defer cancel()
	err := c.fsys.MkdirAll(ctx, dir+"/file", withMode(c.opt.Owner, 0o777))
	if !errors.Is(err, export.ErrNotDir) && !errors.Is(err, export.ErrExist) {
		t.Errorf("MkdirAll over a file: got %v, want ErrNotDir or ErrExist", err)
	}
	err = c.fsys.MkdirAll(ctx, dir+"/file/sub", withMode(c.opt.Owner, 0o777))
	if !errors.Is(err, export.ErrNotDir) {
		t.Errorf("MkdirAll below a file: got %v, want ErrNotDir", err)
	}
}

func (c *contract) mkdirAllModes(t *testing.T) {
	for _, mode := range []uint32{0o777, 0o700, 0o2770, 0o1777, 0o000} {
		p := c.path(t, fmt.Sprintf("m%04o", mode))
		c.mkdir(t, p, withMode(c.opt.Owner, mode))
		want := export.Mode(mode)
		if c.opt.NoSpecialModes {
			want = export.Mode(mode & 0o777)
		}
		if got := c.stat(t, p).Mode; got != want {
			t.Errorf("mode %04o: got %04o, want %04o", mode, got, want)
		}
	}
}

func (c *contract) statMissing(t *testing.T) {
	if err := c.statErr(c.path(t, "nope")); !errors.Is(err, export.ErrNotExist) {
		t.Errorf("Stat(missing): got %v, want ErrNotExist", err)
	}
	if err := c.statErr(c.path(t, "nope", "deeper")); !errors.Is(err, export.ErrNotExist) {
		t.Errorf("Stat(missing/deeper): got %v, want ErrNotExist", err)
	}
}

func (c *contract) statRoot(t *testing.T) {
	if info := c.stat(t, "."); !info.IsDir {
		t.Errorf("Stat(.): root is not a directory: %+v", info)
	}
}

func (c *contract) renameToFreeName(t *testing.T) {
	from, to := c.path(t, "vol"), c.path(t, "archived-vol")
	c.mkdir(t, from, withMode(c.opt.Owner, 0o777))
	c.opt.Populate(t, from+"/keep.txt", []byte("keep me"))
	ctx, cancel := c.ctx()
	defer cancel()
	if err := c.fsys.Rename(ctx, from, to); err != nil {
		t.Fatalf("Rename(%q, %q): %v", from, to, err)
	}
	if err := c.statErr(from); !errors.Is(err, export.ErrNotExist) {
		t.Errorf("after rename, source: got %v, want ErrNotExist", err)
	}
	if info := c.stat(t, to+"/keep.txt"); info.IsDir {
		t.Errorf("renamed file became a directory")
	}
}

// ID tells objects apart, survives a rename, and is not reused by a new directory of the same
// name: archive records rely on it to know that what is at an archive's path is the archive.
func (c *contract) idKeptByRename(t *testing.T) {
	a, b := c.path(t, "a"), c.path(t, "b")
	c.mkdir(t, a, withMode(c.opt.Owner, 0o777))
	c.mkdir(t, b, withMode(c.opt.Owner, 0o777))
	before, other := c.stat(t, a).ID, c.stat(t, b).ID
	if before == "" || before == other {
		t.Fatalf("IDs %q and %q: want two different ones", before, other)
	}
	moved := c.path(t, "archived-a")
	ctx, cancel := c.ctx()
	defer cancel()
	if err := c.fsys.Rename(ctx, a, moved); err != nil {
		t.Fatal(err)
	}
	if after := c.stat(t, moved).ID; after != before && !c.opt.RenameChangesID {
		t.Errorf("ID %q after the rename, %q before", after, before)
	}
	before = c.stat(t, moved).ID
	// Removed and made again under the same name (a file system may reuse the inode number):
	// another object, another ID.
	if err := c.fsys.RemoveAll(ctx, moved, nil); err != nil {
		t.Fatal(err)
	}
	c.mkdir(t, moved, withMode(c.opt.Owner, 0o777))
	if again := c.stat(t, moved).ID; again == before {
		t.Errorf("a new directory at %s has the removed one's ID %q", moved, again)
	}
}

func (c *contract) renameOntoTakenName(t *testing.T) {
	from, to := c.path(t, "vol"), c.path(t, "archived-vol")
	c.mkdir(t, from, withMode(c.opt.Owner, 0o777))
	c.mkdir(t, to, withMode(c.opt.Owner, 0o777))
	c.opt.Populate(t, to+"/older.txt", []byte("older archive"))
	c.opt.Populate(t, from+"/newer.txt", []byte("newer"))
	ctx, cancel := c.ctx()
	defer cancel()
	if err := c.fsys.Rename(ctx, from, to); !errors.Is(err, export.ErrExist) {
		t.Fatalf("Rename onto a non-empty dir: got %v, want ErrExist", err)
	}
	c.stat(t, to+"/older.txt")
	c.stat(t, from+"/newer.txt")
}

func (c *contract) renameOntoEmptyDir(t *testing.T) {
	// POSIX rename replaces an empty directory; the contract does not.
	from, to := c.path(t, "vol"), c.path(t, "archived-vol")
	c.mkdir(t, from, withMode(c.opt.Owner, 0o777))
	c.mkdir(t, to, withMode(c.opt.Owner, 0o700))
	ctx, cancel := c.ctx()
	defer cancel()
	if err := c.fsys.Rename(ctx, from, to); !errors.Is(err, export.ErrExist) {
		t.Fatalf("Rename onto an empty dir: got %v, want ErrExist", err)
	}
	if got := c.stat(t, to).Mode; got != export.Mode(0o700) {
		t.Errorf("target replaced: mode %o", got)
	}
	c.stat(t, from)
}

func (c *contract) renameMissing(t *testing.T) {
	c.mkdir(t, c.path(t), withMode(c.opt.Owner, 0o777))
	ctx, cancel := c.ctx()
	defer cancel()
	err := c.fsys.Rename(ctx, c.path(t, "nope"), c.path(t, "archived-nope"))
	if !errors.Is(err, export.ErrNotExist) {
		t.Errorf("Rename(missing): got %v, want ErrNotExist", err)
	}
}

func (c *contract) removeAllTree(t *testing.T) {
	root := c.path(t, "vol")
	c.mkdir(t, root+"/sub/deeper", withMode(c.opt.Owner, 0o777))
	c.mkdir(t, root+"/locked", withMode(c.opt.Owner, 0o500))
	c.opt.Populate(t, root+"/top.txt", []byte("1"))
	c.opt.Populate(t, root+"/sub/mid.txt", []byte("2"))
	c.opt.Populate(t, root+"/sub/deeper/low.txt", []byte("3"))
	for i := 0; i < 40; i++ { // more entries than one READDIR reply holds
		c.opt.Populate(t, fmt.Sprintf("%s/sub/many-%03d-%s.txt", root, i, longName), []byte("x"))
	}
	ctx, cancel := c.ctx()
	defer cancel()
	if err := c.fsys.RemoveAll(ctx, root, nil); err != nil {
		t.Fatalf("RemoveAll(%q): %v", root, err)
	}
	if err := c.statErr(root); !errors.Is(err, export.ErrNotExist) {
		t.Errorf("after RemoveAll: got %v, want ErrNotExist", err)
	}
	c.stat(t, c.path(t)) // the parent stays
}

const longName = "padding-so-that-directory-listings-span-several-replies-0123456789abcdefghijklmnopqrstuvwxyz"

func (c *contract) removeAllMissing(t *testing.T) {
	ctx, cancel := c.ctx()
	defer cancel()
	if err := c.fsys.RemoveAll(ctx, c.path(t, "nope"), nil); err != nil {
		t.Errorf("RemoveAll(missing): %v", err)
	}
}

func (c *contract) removeAllRootRefused(t *testing.T) {
	ctx, cancel := c.ctx()
	defer cancel()
	for _, p := range []string{".", "", "/"} {
		if err := c.fsys.RemoveAll(ctx, p, nil); !errors.Is(err, export.ErrInvalidPath) {
			t.Errorf("RemoveAll(%q): got %v, want ErrInvalidPath", p, err)
		}
	}
	c.stat(t, c.base)
}

func (c *contract) invalidPaths(t *testing.T) {
	ctx, cancel := c.ctx()
	defer cancel()
	attrs := withMode(c.opt.Owner, 0o777)
	for _, p := range []string{"/abs", "..", "../x", c.base + "/../x", c.base + "/a/../../x", "a//b", "a/./b", "a/", "x\x00y"} {
		if err := c.fsys.MkdirAll(ctx, p, attrs); !errors.Is(err, export.ErrInvalidPath) {
			t.Errorf("MkdirAll(%q): got %v, want ErrInvalidPath", p, err)
		}
		if err := c.fsys.RemoveAll(ctx, p, nil); !errors.Is(err, export.ErrInvalidPath) {
			t.Errorf("RemoveAll(%q): got %v, want ErrInvalidPath", p, err)
		}
		if err := c.fsys.Rename(ctx, c.base, p); !errors.Is(err, export.ErrInvalidPath) {
			t.Errorf("Rename(base, %q): got %v, want ErrInvalidPath", p, err)
		}
		if _, err := c.fsys.Stat(ctx, p); !errors.Is(err, export.ErrInvalidPath) {
			t.Errorf("Stat(%q): got %v, want ErrInvalidPath", p, err)
		}
	}
}

func (c *contract) concurrent(t *testing.T) {
	const n = 50
	attrs := withMode(c.opt.Owner, 0o777)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			ctx, cancel := c.ctx()
			defer cancel()
			p := c.path(t, fmt.Sprintf("vol-%02d", i))
			if err := c.fsys.MkdirAll(ctx, p, attrs); err != nil {
				errs <- fmt.Errorf("MkdirAll(%q): %w", p, err)
				return
			}
			if err := c.fsys.Rename(ctx, p, p+"-renamed"); err != nil {
				errs <- fmt.Errorf("Rename(%q): %w", p, err)
				return
			}
			errs <- c.fsys.RemoveAll(ctx, p+"-renamed", nil)
		}(i)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func (c *contract) permissionDenied(t *testing.T) {
	// A directory owned by the test owner with mode 0700 cannot be entered
	// by another, unprivileged uid.
	locked := c.path(t, "locked")
	c.mkdir(t, locked, withMode(c.opt.Owner, 0o700))
	other := export.DirAttrs{Mode: export.Mode(0o777), UID: c.opt.Owner.UID + 4242, GID: c.opt.Owner.GID + 4242}
	ctx, cancel := c.ctx()
	defer cancel()
	err := c.fsys.MkdirAll(ctx, locked+"/inside", other)
	if !errors.Is(err, export.ErrPermission) {
		t.Errorf("MkdirAll in another user's 0700 dir: got %v, want ErrPermission", err)
	}
}

func (c *contract) rootSquashed(t *testing.T) {
	p := c.path(t, "root-owned")
	ctx, cancel := c.ctx()
	defer cancel()
	err := c.fsys.MkdirAll(ctx, p, export.DirAttrs{Mode: export.Mode(0o755), UID: 0, GID: 0})
	if err == nil {
		if info := c.stat(t, p); info.UID == 0 {
			t.Errorf("root_squash export: directory created as root is owned by root")
		}
		return
	}
	if !errors.Is(err, export.ErrPermission) {
		t.Errorf("root_squash export, root-owned mkdir: got %v, want ErrPermission or a squashed owner", err)
	}
}
