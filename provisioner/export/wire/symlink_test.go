package wire_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire"
)

// Symbolic links made by users never lead the provisioner out of the
// export: NFS LOOKUP does not follow them, MkdirAll refuses to go through
// one, RemoveAll removes the link and not what it points to.
func testSymlinks(t *testing.T, fsys *wire.FS, exportDir, base string) {
	outside := t.TempDir()
	precious := filepath.Join(outside, "precious.txt")
	must(t, os.WriteFile(precious, []byte("keep"), 0o644))
	vol := filepath.Join(exportDir, base, "vol")
	must(t, os.MkdirAll(vol, 0o777))
	must(t, os.Symlink(outside, filepath.Join(exportDir, base, "link")))
	must(t, os.Symlink(outside, filepath.Join(vol, "inner-link")))
	c := ctx(t)

	if err := fsys.MkdirAll(c, base+"/link/x", attrs0777); !errors.Is(err, export.ErrNotDir) {
		t.Errorf("MkdirAll through a symlink: got %v, want ErrNotDir", err)
	}
	if info, err := fsys.Stat(c, base+"/link"); err != nil || info.IsDir {
		t.Errorf("Stat(link) = %+v, %v: want a non-directory", info, err)
	}
	must(t, fsys.RemoveAll(c, base+"/vol", nil))
	must(t, fsys.RemoveAll(c, base+"/link", nil))
	for _, p := range []string{vol, filepath.Join(exportDir, base, "link")} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if _, err := os.Stat(precious); err != nil {
		t.Errorf("a file outside the export was touched: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); err == nil {
		t.Errorf("MkdirAll created a directory outside the export")
	}
}

func TestSymlinksInProcess(t *testing.T) {
	srv, fsys := openInProcess(t, wire.Options{})
	must(t, os.Mkdir(filepath.Join(srv.Dir, "base"), 0o777))
	testSymlinks(t, fsys, srv.Dir, "base")
}

func TestSymlinksGanesha(t *testing.T) {
	eachVersion(t, func(t *testing.T, v wire.Version) {
		g := ganesha(t, false)
		fsys := g.open(t, wire.Options{Version: v})
		base := testBase(t, g, fsys, export.DirAttrs{Mode: 0o777})
		testSymlinks(t, fsys, g.dir, base)
	})
}
