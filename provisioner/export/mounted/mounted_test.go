package mounted_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/exporttest"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/mounted"
)

func TestContract(t *testing.T) {
	dir := t.TempDir()
	o, err := mounted.New(dir, "nfs.example", "/srv/nfs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	fsys, err := o.Open(context.Background(), "nfs.example", "/srv/nfs")
	if err != nil {
		t.Fatal(err)
	}
	owner := export.DirAttrs{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	exporttest.Run(t, fsys, exporttest.Options{
		Owner:             owner,
		ChecksCredentials: false, // one process, one uid: nothing to check
		Populate: func(t *testing.T, p string, data []byte) {
			if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(p)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		Symlink: exporttest.LocalSymlink(dir),
		Swap:    exporttest.LocalSwap(dir),
		Statfs:  exporttest.LocalStatfs(dir),
	})
}

func TestOpenOtherExportRefused(t *testing.T) {
	o, err := mounted.New(t.TempDir(), "nfs.example", "/srv/nfs")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := o.Open(context.Background(), "other.example", "/srv/nfs"); err == nil {
		t.Error("Open of another server succeeded")
	}
	if _, err := o.Open(context.Background(), "nfs.example", "/srv/other"); err == nil {
		t.Error("Open of another share succeeded")
	}
	if _, err := o.Open(context.Background(), "NFS.example", "/srv/nfs/"); err != nil {
		t.Errorf("Open of the mounted export with other spelling: %v", err)
	}
}

// A symlink planted in the export by a user must not let any operation
// reach outside the mount root.
func TestSymlinkEscapeRefused(t *testing.T) {
	outside := t.TempDir()
	dir := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fsys, err := mounted.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	ctx := context.Background()
	if err := fsys.MkdirAll(ctx, "evil/sub", export.DirAttrs{Mode: 0o777}); err == nil {
		t.Error("MkdirAll through a symlink to outside succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "sub")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory appeared outside the root: %v", err)
	}
	if err := fsys.Rename(ctx, "evil/precious", "stolen"); err == nil {
		t.Error("Rename through a symlink to outside succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "precious")); err != nil {
		t.Errorf("file outside the root was touched: %v", err)
	}
}

// A FIFO renamed over a file being copied does not hang the copy: the read fails at once.
func TestCopyReadOfFIFO(t *testing.T) {
	dir := t.TempDir()
	fsys, err := mounted.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := fsys.Tree()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		top, _, err := tree.OpenDir(ctx, ".")
		if err == nil {
			var ents []export.DirEntry
			ents, _, _, err = tree.ReadDir(ctx, top, export.DirCursor{})
			for _, e := range ents {
				if e.Name == "pipe" {
					_, _, err = tree.ReadAt(ctx, e.Node, make([]byte, 10), 0)
				}
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a read of a FIFO succeeded")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a read of a FIFO blocked")
	}
}
