package wire_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire"
)

// BenchmarkCopyTree clones trees on Ganesha with export.CopyTree (what a
// clone of a claim runs) and, in the same run, copies the same tree with
// `cp -a` on the export's backing directory: the physical limit here, no
// NFS in between. Two trees:
//
//	big:   one file of NFSP_BENCH_COPY_MIB MiB (default 1024) of random bytes
//	small: NFSP_BENCH_COPY_FILES files of 4 KiB (default 50,000) in 500 directories
//
// Reported: MB/s (big) or files/s (small) for both (for cp -a also with
// the sync that puts its data on disk, as a clone's COMMITs do), NFS round
// trips per file, and the peak Go heap above idle. The page cache is
// dropped before each copy when /proc/sys/vm/drop_caches is writable, so
// both start cold.
//
// Over NFSv3 and NFSv4.1, side by side (sub-benchmarks nfs3, nfs4.1).
//
//	go test -run '^$' -bench CopyTree -benchtime 1x ./provisioner/export/wire/
func BenchmarkCopyTree(b *testing.B) {
	for _, v := range benchVersions {
		b.Run("nfs"+string(v), func(b *testing.B) { benchCopyTree(b, v) })
	}
}

func benchCopyTree(b *testing.B, v wire.Version) {
	g := ganesha(b, false)
	var rts atomic.Int64
	fsys := g.open(b, wire.Options{Version: v, Observer: func(_, _ string, _ time.Duration, _ error) { rts.Add(1) }})
	b.Run("big", func(b *testing.B) {
		mib := envInt(b, "NFSP_BENCH_COPY_MIB", 1024)
		copyBench(b, g, fsys, &rts, func(root string) { writeRandomFile(b, filepath.Join(root, "big.bin"), mib<<20) }, func(took time.Duration) (string, float64) {
			return "MB/s", float64(mib<<20) / 1e6 / took.Seconds()
		})
	})
	b.Run("small", func(b *testing.B) {
		files := envInt(b, "NFSP_BENCH_COPY_FILES", 50000)
		copyBench(b, g, fsys, &rts, func(root string) { writeSmallFiles(b, root, files, 500) }, func(took time.Duration) (string, float64) {
			return "files/s", float64(files) / took.Seconds()
		})
	})
}

func copyBench(b *testing.B, g ganeshaExport, fsys export.FS, rts *atomic.Int64, populate func(root string), rate func(time.Duration) (string, float64)) {
	name := fmt.Sprintf("bench-copy-%d", time.Now().UnixNano())
	src := filepath.Join(g.dir, name)
	populate(src)
	b.Cleanup(func() { os.RemoveAll(src) })
	for i := 0; i < b.N; i++ {
		dst := fmt.Sprintf("%s-copy-%d", name, i)
		b.Cleanup(func() { os.RemoveAll(filepath.Join(g.dir, dst)) })
		dropCaches()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		peak := samplePeakHeap()
		rts.Store(0)
		var p export.CopyProgress
		b.StartTimer()
		start := time.Now()
		c, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		err := export.CopyTree(c, fsys.Tree(), name, fsys.Tree(), dst, export.CopyOptions{Progress: &p})
		cancel()
		took := time.Since(start)
		b.StopTimer()
		heap := peak()
		if err != nil {
			b.Fatal(err)
		}
		unit, v := rate(took)
		b.ReportMetric(v, unit)
		n := p.Snapshot()
		b.ReportMetric(float64(rts.Load())/float64(max(n.Files, 1)), "rt/file")
		b.ReportMetric(float64(heap-min(heap, before.HeapInuse))/(1<<20), "peak-heap-MiB")

		dropCaches()
		start = time.Now()
		if out, err := exec.Command("cp", "-a", src, filepath.Join(g.dir, dst+"-cp")).CombinedOutput(); err != nil {
			b.Fatalf("cp -a: %v: %s", err, out)
		}
		unit, v = rate(time.Since(start))
		b.ReportMetric(v, "cp-a-"+unit)
		// A clone's data is on disk when it ends (COMMIT, FILE_SYNC); cp -a's is in the page cache.
		if out, err := exec.Command("sync", "-f", g.dir).CombinedOutput(); err != nil {
			b.Fatalf("sync: %v: %s", err, out)
		}
		_, v = rate(time.Since(start))
		b.ReportMetric(v, "cp-a+sync-"+unit)
		os.RemoveAll(filepath.Join(g.dir, dst+"-cp"))
	}
}

// dropCaches empties the page cache, when this process may.
func dropCaches() {
	exec.Command("sync").Run()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
}

func writeRandomFile(b *testing.B, p string, size int) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4<<20)
	for written := 0; written < size; written += len(buf) {
		rand.Read(buf)
		if _, err := f.Write(buf[:min(len(buf), size-written)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

func writeSmallFiles(b *testing.B, root string, files, dirs int) {
	data := make([]byte, 4096)
	for d := 0; d < dirs; d++ {
		dir := filepath.Join(root, "d"+strconv.Itoa(d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := d; f < files; f += dirs {
			rand.Read(data[:16])
			if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(f)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
}
