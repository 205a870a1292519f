package exporttest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// The cases of a hostile tenant: symlinks where directories are expected,
// swapped in while the backend works, inside trees being removed; trees
// deeper and wider than any fixed limit.

func (c *contract) mkdirExclusive(t *testing.T) {
	ctx, cancel := c.ctx()
	defer cancel()
	dir := c.path(t, "vol")
	asked := withMode(c.opt.Owner, 0o750)
	c.mkdir(t, c.path(t), withMode(c.opt.Owner, 0o777))
	if err := c.fsys.Mkdir(ctx, dir, asked); err != nil {
		t.Fatalf("Mkdir(%q): %v", dir, err)
	}
	if info := c.stat(t, dir); !info.IsDir || info.Mode != asked.Mode || info.UID != asked.UID || info.GID != asked.GID {
		t.Errorf("Mkdir made %+v, want a directory with %+v", info, asked)
	}
	if err := c.fsys.Mkdir(ctx, dir, withMode(c.opt.Owner, 0o700)); !errors.Is(err, export.ErrExist) {
		t.Errorf("Mkdir of an existing directory: got %v, want ErrExist", err)
	}
	if info := c.stat(t, dir); info.Mode != asked.Mode {
		t.Errorf("Mkdir of an existing directory changed its mode to %04o", info.Mode)
	}
	c.opt.Populate(t, c.path(t, "file"), []byte("x"))
	if err := c.fsys.Mkdir(ctx, c.path(t, "file"), asked); !errors.Is(err, export.ErrExist) {
		t.Errorf("Mkdir over a file: got %v, want ErrExist", err)
	}
	if err := c.fsys.Mkdir(ctx, c.path(t, "missing", "vol"), asked); !errors.Is(err, export.ErrNotExist) {
		t.Errorf("Mkdir below a missing parent: got %v, want ErrNotExist", err)
	}
}

func (c *contract) setAttrs(t *testing.T) {
	ctx, cancel := c.ctx()
	defer cancel()
	dir := c.path(t, "vol")
	c.mkdir(t, dir, withMode(c.opt.Owner, 0o700))
	want := withMode(c.opt.Owner, 0o2775)
	if c.opt.NoSpecialModes {
		want.Mode = 0o775
	}
	if err := c.fsys.SetAttrs(ctx, dir, want); err != nil {
		t.Fatalf("SetAttrs: %v", err)
	}
	if info := c.stat(t, dir); info.Mode != want.Mode || info.UID != want.UID || info.GID != want.GID {
		t.Errorf("after SetAttrs: %+v, want %+v", info, want)
	}
	if err := c.fsys.SetAttrs(ctx, c.path(t, "missing"), want); !errors.Is(err, export.ErrNotExist) {
		t.Errorf("SetAttrs(missing): got %v, want ErrNotExist", err)
	}
}

// linkedVictim makes the victim's directory holding precious ("keep"), and the tenant's directory
// dir (with mode) holding the symlink link → target.
func (c *contract) linkedVictim(t *testing.T, victim, dir string, mode uint32, link, target string) {
	t.Helper()
	c.mkdir(t, victim, withMode(c.opt.Owner, 0o755))
	c.opt.Populate(t, victim+"/precious", []byte("keep"))
	c.mkdir(t, dir, withMode(c.opt.Owner, mode))
	c.opt.Symlink(t, dir+"/"+link, target)
}

// symlinkComponent: a tenant links ns/sub to a directory of someone else.
// No operation goes through the link; removing the link removes only it.
func (c *contract) symlinkComponent(t *testing.T) {
	victim := c.path(t, "other-ns", "data")
	c.linkedVictim(t, victim, c.path(t, "ns"), 0o777, "sub", "../other-ns/data")
	ctx, cancel := c.ctx()
	defer cancel()
	attrs := withMode(c.opt.Owner, 0o777)
	through := c.path(t, "ns", "sub", "x")
	checks := map[string]error{
		"MkdirAll":      c.fsys.MkdirAll(ctx, through, attrs),
		"Mkdir":         c.fsys.Mkdir(ctx, through, attrs),
		"SetAttrs":      c.fsys.SetAttrs(ctx, c.path(t, "ns", "sub"), attrs),
		"Rename":        c.fsys.Rename(ctx, c.path(t, "ns", "sub", "precious"), c.path(t, "ns", "stolen")),
		"Rename target": c.fsys.Rename(ctx, c.path(t, "ns"), c.path(t, "ns", "sub", "moved")),
		"RemoveAll":     c.fsys.RemoveAll(ctx, c.path(t, "ns", "sub", "precious"), nil),
	}
	for op, err := range checks {
		if !errors.Is(err, export.ErrNotDir) {
			t.Errorf("%s through a symlink: got %v, want ErrNotDir", op, err)
		}
	}
	if _, err := c.fsys.Stat(ctx, c.path(t, "ns", "sub", "precious")); !errors.Is(err, export.ErrNotDir) {
		t.Errorf("Stat through a symlink: got %v, want ErrNotDir", err)
	}
	if info := c.stat(t, c.path(t, "ns", "sub")); info.IsDir {
		t.Errorf("Stat of a symlink to a directory says directory: it was followed")
	}
	if err := c.fsys.RemoveAll(ctx, c.path(t, "ns", "sub"), nil); err != nil {
		t.Errorf("RemoveAll of the symlink: %v", err)
	}
	c.victimIntact(t, victim, withMode(c.opt.Owner, 0o755))
	if err := c.statErr(c.path(t, "ns", "sub")); !errors.Is(err, export.ErrNotExist) {
		t.Errorf("the symlink is still there: %v", err)
	}
}

// victimIntact checks that dir still has attrs and its file "precious".
func (c *contract) victimIntact(t *testing.T, dir string, attrs export.DirAttrs) {
	t.Helper()
	info := c.stat(t, dir)
	if !info.IsDir || info.Mode != attrs.Mode || info.UID != attrs.UID || info.GID != attrs.GID {
		t.Errorf("another tenant's directory %s changed: %+v, was %+v", dir, info, attrs)
	}
	if info := c.stat(t, dir+"/precious"); info.IsDir {
		t.Errorf("%s/precious is not the file it was", dir)
	}
	if err := c.statErr(dir + "/x"); !errors.Is(err, export.ErrNotExist) {
		t.Errorf("something was created in another tenant's directory %s: %v", dir, err)
	}
}

// removeAllSymlinks: links inside a tree being removed are removed as
// links; what they point to stays.
func (c *contract) removeAllSymlinks(t *testing.T) {
	victim := c.path(t, "victim")
	c.mkdir(t, victim, withMode(c.opt.Owner, 0o755))
	c.opt.Populate(t, victim+"/precious", []byte("keep"))
	vol := c.path(t, "vol")
	c.mkdir(t, vol+"/sub", withMode(c.opt.Owner, 0o777))
	c.opt.Symlink(t, vol+"/link-dir", "../victim")
	c.opt.Symlink(t, vol+"/sub/link-file", "../../victim/precious")
	c.opt.Symlink(t, vol+"/sub/dangling", "/nonexistent")
	ctx, cancel := c.ctx()
	defer cancel()
	if err := c.fsys.RemoveAll(ctx, vol, nil); err != nil {
		t.Fatalf("RemoveAll: %v", err)
	}
	if err := c.statErr(vol); !errors.Is(err, export.ErrNotExist) {
		t.Errorf("after RemoveAll: %v", err)
	}
	c.victimIntact(t, victim, withMode(c.opt.Owner, 0o755))
}

// symlinkSwap: while Mkdir and MkdirAll create directories, a tenant that
// can write the parent keeps replacing each new directory by a symlink to
// someone else's. The owner and mode meant for the new directory must
// never land on the victim.
func (c *contract) symlinkSwap(t *testing.T) {
	victimAttrs := withMode(c.opt.Owner, 0o700)
	victim := c.path(t, "victim")
	c.mkdir(t, victim, victimAttrs)
	c.opt.Populate(t, victim+"/precious", []byte("keep"))
	parent := c.path(t, "shared")
	c.mkdir(t, parent, withMode(c.opt.Owner, 0o777))
	asked := withMode(c.opt.Owner, 0o777)
	const rounds = 50
	for i := 0; i < rounds; i++ {
		name := fmt.Sprintf("%s/v%d", parent, i)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				if c.opt.Swap(name, "../victim") {
					return
				}
			}
		}()
		ctx, cancel := c.ctx()
		var err error
		if i%2 == 0 {
			err = c.fsys.Mkdir(ctx, name, asked)
		} else {
			err = c.fsys.MkdirAll(ctx, name+"/leaf", asked)
		}
		cancel()
		close(stop)
		wg.Wait()
		_ = err // either outcome is fine; the victim is what matters
	}
	c.victimIntact(t, victim, victimAttrs)
}

// removeAllDeep: a tree deeper than any recursion or stack bound.
func (c *contract) removeAllDeep(t *testing.T) {
	const depth = 600
	vol := c.path(t, "vol")
	deep := vol + strings.Repeat("/d", depth)
	c.mkdir(t, deep, withMode(c.opt.Owner, 0o777))
	c.opt.Populate(t, deep+"/bottom.txt", []byte("x"))
	ctx, cancel := context.WithTimeout(context.Background(), 4*c.opt.Timeout)
	defer cancel()
	var last export.Removed
	if err := c.fsys.RemoveAll(ctx, vol, func(r export.Removed) { last = r }); err != nil {
		t.Fatalf("RemoveAll of a tree %d levels deep: %v", depth, err)
	}
	if err := c.statErr(vol); !errors.Is(err, export.ErrNotExist) {
		t.Errorf("after RemoveAll: %v", err)
	}
	if last.Dirs != depth+1 || last.Files != 1 {
		t.Errorf("progress reported %+v, want %d directories and 1 file", last, depth+1)
	}
}

// removeAllErrorShort: a failure deep in a tree is reported once, not
// once per level (the message becomes an Event). The failure here is the
// deadline running out part way down.
func (c *contract) removeAllErrorShort(t *testing.T) {
	vol := c.path(t, "vol")
	deep := vol + strings.Repeat("/level", 300)
	failed := 0
	for timeout := 40 * time.Millisecond; timeout > 0 && failed < 3; timeout /= 2 {
		c.mkdir(t, deep, withMode(c.opt.Owner, 0o777))
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := c.fsys.RemoveAll(ctx, vol, nil)
		cancel()
		if err == nil {
			continue
		}
		failed++
		if len(err.Error()) > 512 {
			t.Errorf("RemoveAll error is %d bytes long: %.300s…", len(err.Error()), err)
		}
	}
	if failed == 0 {
		t.Fatal("RemoveAll of a 300-level tree never ran out of a deadline of 40 ms or less; the case checked nothing")
	}
}

// capacity: the numbers are those of a real filesystem. When the options
// give the backing filesystem's statfs, they match it within 1 %.
func (c *contract) capacity(t *testing.T) {
	ctx, cancel := c.ctx()
	defer cancel()
	got, err := c.fsys.Capacity(ctx)
	if err != nil {
		t.Fatalf("Capacity: %v", err)
	}
	if got.SizeBytes == 0 || got.FreeBytes > got.SizeBytes || got.AvailableBytes > got.FreeBytes || got.FreeInodes > got.TotalInodes {
		t.Errorf("Capacity %+v is not a filesystem's", got)
	}
	if c.opt.Statfs == nil {
		return
	}
	want := c.opt.Statfs(t)
	near := func(what string, a, b uint64) {
		if diff := float64(a) - float64(b); diff > 0.01*float64(b) || -diff > 0.01*float64(b) {
			t.Errorf("%s: %d, the backing filesystem says %d", what, a, b)
		}
	}
	near("size", got.SizeBytes, want.SizeBytes)
	near("available", got.AvailableBytes, want.AvailableBytes)
	near("inodes", got.TotalInodes, want.TotalInodes)
}

// usage: Usage counts every entry once and at least the data written,
// follows no symlink, and calls pace before each listing (an error from
// pace ends the walk with it).
func (c *contract) usage(t *testing.T) {
	vol := c.path(t, "vol")
	c.mkdir(t, vol+"/a/b", withMode(c.opt.Owner, 0o777))
	data := make([]byte, 64<<10)
	for i := range data {
		data[i] = byte(i)
	}
	files := []string{vol + "/top", vol + "/a/mid", vol + "/a/b/low"}
	for i := 0; i < 30; i++ { // more than one listing page on a small-page server
		files = append(files, fmt.Sprintf("%s/a/many-%02d-%s", vol, i, longName))
	}
	for _, p := range files {
		c.opt.Populate(t, p, data)
	}
	want := uint64(1 + 2 + len(files)) // vol, a, b, the files
	if c.opt.Symlink != nil {
		c.opt.Symlink(t, vol+"/a/link", "../..") // would loop if followed
		want++
	}
	ctx, cancel := c.ctx()
	defer cancel()
	paced := 0
	u, err := c.fsys.Usage(ctx, vol, func(context.Context) error { paced++; return nil })
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	if u.Inodes != want {
		t.Errorf("Usage counted %d entries, want %d", u.Inodes, want)
	}
	if min := uint64(len(files)) * uint64(len(data)); u.Bytes < min {
		t.Errorf("Usage counted %d bytes, less than the %d written", u.Bytes, min)
	}
	if paced < 3 {
		t.Errorf("pace was called %d times for 3 directories", paced)
	}
	stop := errors.New("budget spent")
	if _, err := c.fsys.Usage(ctx, vol, func(context.Context) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Usage with a pace that says stop: %v", err)
	}
	if _, err := c.fsys.Usage(ctx, c.path(t, "missing"), nil); !errors.Is(err, export.ErrNotExist) {
		t.Errorf("Usage of a missing directory: %v", err)
	}
}
