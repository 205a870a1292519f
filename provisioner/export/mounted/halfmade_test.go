package mounted

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// A directory whose owner cannot be set is removed again: a retry must not
// find a 0700 directory owned by the wrong user and take it as made.
func TestHalfMadeDirectoryRemoved(t *testing.T) {
	dir := t.TempDir()
	fsys, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	fchown = func(int, int, int) error { return unix.EPERM }
	defer func() { fchown = unix.Fchown }()
	ctx := context.Background()
	attrs := export.DirAttrs{Mode: 0o2770, UID: 1234, GID: 1234}
	if err := fsys.Mkdir(ctx, "vol", attrs); !errors.Is(err, export.ErrPermission) {
		t.Errorf("Mkdir with a failing chown: %v, want ErrPermission", err)
	}
	if err := fsys.MkdirAll(ctx, "ns/vol", attrs); !errors.Is(err, export.ErrPermission) {
		t.Errorf("MkdirAll with a failing chown: %v, want ErrPermission", err)
	}
	for _, p := range []string{"vol", "ns"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was left behind half made: %v", p, err)
		}
	}
}
