package mounted_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/mounted"
)

// longName is a name of 255 bytes, the longest a component may be, ending in i.
func longName(i int) string {
	s := strings.Repeat("n", 250)
	return s + string(rune('a'+i/26/26%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i%26)) + "xy"
}

// hostileTree builds, below root/src, a chain of depth directories with 255-byte names and, at
// each of the top wideLevels levels of it, wide empty subdirectories of 255-byte names: paths far
// over PATH_MAX, made one component at a time.
func hostileTree(t testing.TB, root string, depth, wideLevels, wide int) {
	t.Helper()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	name := "src"
	for level := 0; level <= depth; level++ {
		if err := unix.Mkdirat(fd, name, 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
		if level < wideLevels {
			for i := 1; i <= wide; i++ {
				if err := unix.Mkdirat(fd, longName(i), 0o755); err != nil {
					t.Fatal(err)
				}
			}
		}
		name = longName(0)
	}
	unix.Close(fd)
}

// copyPeakHeap copies src to dst on one mounted export and returns the peak of the Go heap in use
// above what it was before, sampled every millisecond, and the copy's error.
func copyPeakHeap(t testing.TB, root string) (uint64, error) {
	t.Helper()
	fsys, err := mounted.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	err = export.CopyTree(context.Background(), fsys.Tree(), "src", fsys.Tree(), "dst", export.CopyOptions{})
	close(stop)
	<-sampled
	return peak.Load(), err
}

// A tenant's hostile tree costs a copy memory bounded by a constant, not by its depth times its
// names: the copy's nodes are not paths. Deeper than the backend copies, it is refused by the
// copy itself, with the memory as flat.
func TestCopyMemoryFlat(t *testing.T) {
	const limit = 48 << 20
	for _, tc := range []struct {
		name                    string
		depth, wideLevels, wide int
		tooDeep                 bool
	}{
		{"depth 600", 600, 0, 0, true},
		{"127 levels, 1300 wide at the top 16", 127, 16, 1300, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && tc.wide > 0 {
				t.Skip("builds 20,800 directories")
			}
			root := t.TempDir()
			hostileTree(t, root, tc.depth, tc.wideLevels, tc.wide)
			peak, err := copyPeakHeap(t, root)
			t.Logf("%s: peak Go heap %.1f MiB above baseline, copy: %.300v", tc.name, float64(peak)/(1<<20), err)
			if tc.tooDeep != (err != nil) || err != nil && !errors.Is(err, export.ErrTooDeep) {
				t.Errorf("copy of a tree of depth %d: %v; want it refused as too deep: %v", tc.depth, err, tc.tooDeep)
			}
			if peak > limit {
				t.Errorf("peak heap %d MiB above baseline, over %d MiB", peak>>20, limit>>20)
			}
			os.RemoveAll(root) // long paths: RemoveAll copes, component by component
		})
	}
}

// chain makes a chain of n directories below root/top (made with its parents).
func chain(t *testing.T, root, top string, n int) {
	t.Helper()
	p := filepath.Join(root, top)
	for i := 0; i < n; i++ {
		p = filepath.Join(p, "d")
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

// A tree the usage walk measures, the copy copies, wherever the volume and the staging directory
// lie below the export root; a deeper one both refuse.
func TestCopyDepthMatchesUsage(t *testing.T) {
	for _, tc := range []struct {
		levels int
		ok     bool
	}{{126, true}, {127, true}, {129, false}} {
		root := t.TempDir()
		chain(t, root, "team/vol/src", tc.levels)
		if err := os.MkdirAll(filepath.Join(root, ".nfsp-clones/install"), 0o755); err != nil {
			t.Fatal(err)
		}
		fsys, err := mounted.OpenDir(root)
		if err != nil {
			t.Fatal(err)
		}
		_, uerr := fsys.Usage(context.Background(), "team/vol/src", nil)
		cerr := export.CopyTree(context.Background(), fsys.Tree(), "team/vol/src", fsys.Tree(), ".nfsp-clones/install/pvc-x.1", export.CopyOptions{})
		fsys.Close()
		if tc.ok && (uerr != nil || cerr != nil) || !tc.ok && (!errors.Is(uerr, export.ErrTooDeep) || !errors.Is(cerr, export.ErrTooDeep)) {
			t.Errorf("%d levels: usage %v, copy %.200v; want both to succeed: %v", tc.levels, uerr, cerr, tc.ok)
		}
	}
}
