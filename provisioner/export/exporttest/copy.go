package exporttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// The copy cases build a source tree through the backend's Tree (so that
// modes, owners and times can be chosen), copy it with export.CopyTree and
// read the copy back object by object.

// spec is one object of a tree to build: a directory when dir, a symlink
// when link is set, else a file holding data (or zeros up to size).
type spec struct {
	path string
	dir  bool
	link string
	data []byte
	mode uint32
	// hole: the file is size bytes of zeros with data at its end
	size  uint64
	mtime time.Time
}

// copySource is a tree that exercises every rule: nested and read-only directories, a file
// spanning several chunks, an empty file, a sparse file, a symlink out of the tree (never followed)
// and one to a directory, names that are not UTF-8, unusual modes and old times.
func copySource() []spec {
	rnd := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 3<<20+12345)
	for i := range big {
		big[i] = byte(rnd.Uint32())
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	return []spec{
		{path: "a", dir: true, mode: 0o750, mtime: old},
		{path: "a/b", dir: true, mode: 0o700, mtime: old.Add(time.Hour)},
		{path: "a/b/deep.txt", data: []byte("deep"), mode: 0o600, mtime: old},
		{path: "a/big.bin", data: big, mode: 0o644, mtime: old.Add(2 * time.Hour)},
		{path: "a/empty", mode: 0o400, mtime: old},
		{path: "sparse", data: []byte("end"), size: 2<<20 + 3, mode: 0o644, mtime: old},
		{path: "hello.txt", data: []byte("hello, clone\n"), mode: 0o640, mtime: old.Add(3 * time.Hour)},
		{path: "exec.sh", data: []byte("#!/bin/sh\n"), mode: 0o755, mtime: old},
		{path: "ro", dir: true, mode: 0o555, mtime: old},
		{path: "ro/inside", data: []byte("in a read-only directory"), mode: 0o444, mtime: old},
		{path: "out", link: "../../secret/precious", mtime: old},
		{path: "to-a", link: "a", mtime: old},
		// Names a POSIX directory holds but that are not UTF-8 (Latin-1 é): copied as they are.
		{path: "caf\xe9.txt", data: []byte("latin-1 name"), mode: 0o644, mtime: old},
		{path: "r\xe9pertoire", dir: true, mode: 0o755, mtime: old},
		{path: "r\xe9pertoire/na\xefve", data: []byte("inside"), mode: 0o644, mtime: old},
	}
}

// build makes the specs below dir (which exists) through the backend's Tree.
func (c *contract) build(t *testing.T, dir string, specs []spec) {
	t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	tr := c.fsys.Tree()
	nodes := map[string]export.Node{}
	top, _, err := tr.OpenDir(ctx, dir)
	if err != nil {
		t.Fatalf("OpenDir(%q): %v", dir, err)
	}
	nodes["."] = top
	var dirs []spec
	for _, s := range specs {
		parent := nodes[path.Dir(s.path)]
		a := export.FileInfo{Mode: export.Mode(s.mode), UID: c.opt.Owner.UID, GID: c.opt.Owner.GID, Atime: s.mtime, Mtime: s.mtime}
		name := path.Base(s.path)
		switch {
		case s.dir:
			a.Type = export.TypeDir
			n, err := tr.Mkdir(ctx, parent, name, a)
			if err != nil {
				t.Fatalf("Mkdir(%s): %v", s.path, err)
			}
			nodes[s.path] = n
			dirs = append(dirs, s)
		case s.link != "":
			a.Type = export.TypeSymlink
			if err := tr.Symlink(ctx, parent, name, s.link, a); err != nil {
				t.Fatalf("Symlink(%s): %v", s.path, err)
			}
		default:
			a.Type, a.Size = export.TypeFile, max(s.size, uint64(len(s.data)))
			n, err := tr.Create(ctx, parent, name, a)
			if err != nil {
				t.Fatalf("Create(%s): %v", s.path, err)
			}
			for off := 0; off < len(s.data); off += 1 << 20 {
				end := min(off+1<<20, len(s.data))
				if err := tr.WriteAt(ctx, n, s.data[off:end], a.Size-uint64(len(s.data))+uint64(off), false); err != nil {
					t.Fatalf("WriteAt(%s): %v", s.path, err)
				}
			}
			if err := tr.Finish(ctx, n, a); err != nil {
				t.Fatalf("Finish(%s): %v", s.path, err)
			}
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- { // children first: a read-only directory last
		s := dirs[i]
		a := export.FileInfo{Type: export.TypeDir, Mode: export.Mode(s.mode), UID: c.opt.Owner.UID, GID: c.opt.Owner.GID, Atime: s.mtime, Mtime: s.mtime}
		if err := tr.Finish(ctx, nodes[s.path], a); err != nil {
			t.Fatalf("Finish(%s): %v", s.path, err)
		}
	}
}

// object is what reading a tree back finds at one path.
type object struct {
	info export.FileInfo
	data []byte // files
	link string // symlinks
}

// readTree reads every object below dir through the backend's Tree.
func (c *contract) readTree(t *testing.T, dir string) map[string]object {
	t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	tr := c.fsys.Tree()
	top, info, err := tr.OpenDir(ctx, dir)
	if err != nil {
		t.Fatalf("OpenDir(%q): %v", dir, err)
	}
	found := map[string]object{".": {info: info}}
	var walk func(n export.Node, prefix string)
	walk = func(n export.Node, prefix string) {
		var at export.DirCursor
		for {
			ents, next, eof, err := tr.ReadDir(ctx, n, at)
			if err != nil {
				t.Fatalf("ReadDir(%s): %v", prefix, err)
			}
			for _, e := range ents {
				p := path.Join(prefix, e.Name)
				o := object{info: e.Info}
				switch e.Info.Type {
				case export.TypeDir:
					walk(e.Node, p)
				case export.TypeSymlink:
					if o.link, err = tr.ReadLink(ctx, e.Node); err != nil {
						t.Fatalf("ReadLink(%s): %v", p, err)
					}
				case export.TypeFile:
					o.data = c.readFile(ctx, t, tr, e.Node, p)
				}
				found[p] = o
			}
			if eof || len(ents) == 0 && next == at {
				return
			}
			at = next
		}
	}
	walk(top, ".")
	return found
}

func (c *contract) readFile(ctx context.Context, t *testing.T, tr export.Tree, n export.Node, p string) []byte {
	t.Helper()
	var data []byte
	buf := make([]byte, 256<<10)
	for {
		got, eof, err := tr.ReadAt(ctx, n, buf, uint64(len(data)))
		if err != nil {
			t.Fatalf("ReadAt(%s): %v", p, err)
		}
		data = append(data, buf[:got]...)
		if eof || got == 0 {
			return data
		}
	}
}

func (c *contract) copyTree(ctx context.Context, src, dst string, o export.CopyOptions) error {
	return export.CopyTree(ctx, c.fsys.Tree(), src, c.fsys.Tree(), dst, o)
}

// copyTreeExact: the copy holds every object of the source with its type, content, link
// target, mode, owner and modification time (symlinks: target and owner).
func (c *contract) copyTreeExact(t *testing.T) {
	src, dst := c.path(t, "src"), c.path(t, "dst")
	c.mkdir(t, src, withMode(c.opt.Owner, 0o755))
	c.mkdir(t, c.path(t, "secret"), withMode(c.opt.Owner, 0o755))
	c.opt.Populate(t, c.path(t, "secret", "precious"), []byte("not to be copied"))
	c.opt.Populate(t, src+"/populated", []byte("written by someone else"))
	c.build(t, src, copySource())
	ctx, cancel := c.ctx()
	defer cancel()
	// Small chunks and few slots: the parallel and bounded paths are taken.
	var p export.CopyProgress
	top := withMode(c.opt.Owner, 0o750)
	if err := c.copyTree(ctx, src, dst, export.CopyOptions{Files: 3, Chunks: 2, ChunksPerFile: 2, Progress: &p, Top: &top}); err != nil {
		t.Fatalf("CopyTree: %v", err)
	}
	want, got := c.readTree(t, src), c.readTree(t, dst)
	compareTrees(t, want, got, c.opt.NoSpecialModes)
	if g := got["."].info; g.Mode&0o777 != 0o750 || g.UID != top.UID || g.GID != top.GID {
		t.Errorf("the copy's top directory: mode %s, owner %d:%d; want CopyOptions.Top's %s %d:%d", g.Mode, g.UID, g.GID, top.Mode, top.UID, top.GID)
	}
	n := p.Snapshot()
	if n.Files != 10 || n.Dirs != 5 || n.Symlinks != 2 {
		t.Errorf("progress: %+v, want 10 files, 5 directories (the top included) and 2 symlinks", n)
	}
	if string(got["caf\xe9.txt"].data) != "latin-1 name" || string(got["r\xe9pertoire/na\xefve"].data) != "inside" {
		t.Error("files whose names are not UTF-8 were not copied as they are")
	}
	if n.Bytes != uint64(len(got["a/big.bin"].data)+len(got["sparse"].data)+13+10+4+24+23+12+6) {
		t.Errorf("progress: %d bytes copied, want every file's length", n.Bytes)
	}
	if strings.Contains(fmt.Sprint(got), "not to be copied") {
		t.Error("the copy holds what a symlink points at: a link was followed")
	}
}

func compareTrees(t *testing.T, want, got map[string]object, noSpecialModes bool) {
	t.Helper()
	var names []string
	for p := range want {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		w, ok := want[p]
		g, found := got[p]
		if !ok || !found {
			t.Errorf("%s: missing from the copy", p)
			continue
		}
		if g.info.Type != w.info.Type || !bytes.Equal(g.data, w.data) || g.link != w.link {
			t.Errorf("%s: copy is type %d, %d bytes, link %q; want type %d, %d bytes, link %q", p, g.info.Type, len(g.data), g.link, w.info.Type, len(w.data), w.link)
		}
		if g.info.UID != w.info.UID || g.info.GID != w.info.GID {
			t.Errorf("%s: copy owned by %d:%d, want %d:%d", p, g.info.UID, g.info.GID, w.info.UID, w.info.GID)
		}
		if w.info.Type == export.TypeSymlink || p == "." {
			continue // a link's mode means nothing; the top directory's is the caller's to give
		}
		mask := export.ModeMask
		if noSpecialModes {
			mask = 0o777
		}
		if g.info.Mode&mask != w.info.Mode&mask {
			t.Errorf("%s: copy has mode %s, want %s", p, g.info.Mode, w.info.Mode)
		}
		if !g.info.Mtime.Equal(w.info.Mtime) {
			t.Errorf("%s: copy modified %s, want %s", p, g.info.Mtime, w.info.Mtime)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: in the copy but not in the source", p)
		}
	}
}

// copyTreeOntoExisting: a copy never goes into something already there, and leaves it as it was.
func (c *contract) copyTreeOntoExisting(t *testing.T) {
	src, dst := c.path(t, "src"), c.path(t, "dst")
	c.mkdir(t, src, withMode(c.opt.Owner, 0o755))
	c.opt.Populate(t, src+"/f", []byte("new"))
	c.mkdir(t, dst, withMode(c.opt.Owner, 0o700))
	c.opt.Populate(t, dst+"/f", []byte("old"))
	ctx, cancel := c.ctx()
	defer cancel()
	if err := c.copyTree(ctx, src, dst, export.CopyOptions{}); !errors.Is(err, export.ErrExist) {
		t.Fatalf("CopyTree onto an existing directory: %v, want ErrExist", err)
	}
	got := c.readTree(t, dst)
	if string(got["f"].data) != "old" || len(got) != 2 || got["."].info.Mode&0o777 != 0o700 {
		t.Errorf("the existing directory changed: %v", got)
	}
}

// copyTreeSymlinkSource: a source that is a symlink (to a directory) is not followed: nothing is
// copied and nothing made.
func (c *contract) copyTreeSymlinkSource(t *testing.T) {
	victim := c.path(t, "victim")
	c.linkedVictim(t, victim, c.path(t, "vol"), 0o755, "link", "../victim")
	ctx, cancel := c.ctx()
	defer cancel()
	dst := c.path(t, "dst")
	if err := c.copyTree(ctx, c.path(t, "vol", "link"), dst, export.CopyOptions{}); !errors.Is(err, export.ErrNotDir) {
		t.Errorf("CopyTree of a symlink: %v, want ErrNotDir", err)
	}
	if err := c.statErr(dst); !errors.Is(err, export.ErrNotExist) {
		t.Errorf("after a refused copy, Stat(dst) = %v, want ErrNotExist", err)
	}
}

// copyTreeSwap: while a tree is copied, a tenant keeps replacing one of its directories by a
// symlink to someone else's. The copy may fail or succeed, but never holds the other's data.
func (c *contract) copyTreeSwap(t *testing.T) {
	victim := c.path(t, "victim")
	c.mkdir(t, victim, withMode(c.opt.Owner, 0o755))
	c.opt.Populate(t, victim+"/precious", []byte("the victim's data"))
	src := c.path(t, "src")
	for i := 0; i < 20; i++ {
		d := fmt.Sprintf("%s/d%02d", src, i)
		c.mkdir(t, d, withMode(c.opt.Owner, 0o755))
		c.opt.Populate(t, d+"/f", []byte("own"))
	}
	for round := 0; round < 10; round++ {
		dst := c.path(t, fmt.Sprintf("dst%d", round))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 19; i >= 0; i-- {
				c.opt.Swap(fmt.Sprintf("%s/d%02d", src, i), "../../victim")
			}
		}()
		ctx, cancel := c.ctx()
		err := c.copyTree(ctx, src, dst, export.CopyOptions{Files: 2})
		cancel()
		<-done
		if err == nil {
			if got := c.readTree(t, dst); strings.Contains(fmt.Sprint(got), "the victim's data") {
				t.Fatalf("round %d: the copy holds the victim's data", round)
			}
		}
		c.restoreSwapped(t, src)
	}
	c.victimIntact(t, victim, withMode(c.opt.Owner, 0o755))
}

// restoreSwapped puts the directories a swap moved away back, for the next round.
func (c *contract) restoreSwapped(t *testing.T, src string) {
	t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	for i := 0; i < 20; i++ {
		d := fmt.Sprintf("%s/d%02d", src, i)
		if info, err := c.fsys.Stat(ctx, d+".moved-away"); err != nil || !info.IsDir {
			continue
		}
		if err := c.fsys.RemoveAll(ctx, d, nil); err != nil {
			t.Fatal(err)
		}
		if err := c.fsys.Rename(ctx, d+".moved-away", d); err != nil {
			t.Fatal(err)
		}
	}
}
