package exporttest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// LocalSymlink implements Options.Symlink for an export whose backing
// directory dir is on this machine.
func LocalSymlink(dir string) func(t *testing.T, path, target string) {
	return func(t *testing.T, path, target string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(path))); err != nil {
			t.Fatal(err)
		}
	}
}

// LocalSwap implements Options.Swap for an export whose backing directory
// dir is on this machine: the directory at path is renamed away and a
// symlink put in its place.
func LocalSwap(dir string) func(path, target string) bool {
	return func(path, target string) bool {
		p := filepath.Join(dir, filepath.FromSlash(path))
		if err := os.Rename(p, p+".moved-away"); err != nil {
			return false
		}
		return os.Symlink(target, p) == nil
	}
}

// LocalStatfs implements Options.Statfs for a backing directory on this
// machine.
func LocalStatfs(dir string) func(t *testing.T) export.Capacity {
	return func(t *testing.T) export.Capacity {
		t.Helper()
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		bs := uint64(st.Bsize)
		return export.Capacity{SizeBytes: st.Blocks * bs, FreeBytes: st.Bfree * bs, AvailableBytes: st.Bavail * bs, TotalInodes: st.Files, FreeInodes: st.Ffree}
	}
}
