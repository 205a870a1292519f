package wire_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire"
)

// BenchmarkRemoveTree deletes a tree of files and directories on Ganesha
// with RemoveAll and, in the same run, the same tree with rm -rf on the
// export's backing directory (the physical limit here: no NFS in
// between). Size: NFSP_BENCH_REMOVE_FILES files in directories of
// NFSP_BENCH_REMOVE_PER_DIR (default 100,000 in 10,000 directories).
// Reported: files/s for both, the peak Go heap above what it was before
// the removal (sampled every 10 ms), the process's RSS high-water mark,
// and NFS round trips per entry.
//
// Over NFSv3 and NFSv4.1, side by side (sub-benchmarks nfs3, nfs4.1).
//
//	go test -run '^$' -bench RemoveTree -benchtime 1x ./provisioner/export/wire/
func BenchmarkRemoveTree(b *testing.B) {
	for _, v := range benchVersions {
		b.Run("nfs"+string(v), func(b *testing.B) { benchRemoveTree(b, v) })
	}
}

func benchRemoveTree(b *testing.B, v wire.Version) {
	files := envInt(b, "NFSP_BENCH_REMOVE_FILES", 100000)
	perDir := envInt(b, "NFSP_BENCH_REMOVE_PER_DIR", 10)
	g := ganesha(b, false)
	var rts atomic.Int64
	fsys := g.open(b, wire.Options{Version: v, Observer: func(_, _ string, _ time.Duration, _ error) { rts.Add(1) }})
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("bench-remove-%d-%d", time.Now().UnixNano(), i)
		b.StopTimer()
		populateTree(b, filepath.Join(g.dir, name), files, perDir)
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		peak := samplePeakHeap()
		rts.Store(0)
		b.StartTimer()
		start := time.Now()
		var last export.Removed
		c, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		err := fsys.RemoveAll(c, name, func(r export.Removed) { last = r })
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		b.StopTimer()
		heap := peak()
		if _, err := os.Lstat(filepath.Join(g.dir, name)); !os.IsNotExist(err) {
			b.Fatalf("tree still there: %v", err)
		}
		if last.Files != uint64(files) {
			b.Errorf("removed %d files, want %d", last.Files, files)
		}
		b.ReportMetric(float64(files)/took.Seconds(), "files/s")
		b.ReportMetric(float64(heap-min(heap, before.HeapInuse))/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(rts.Load())/float64(last.Files+last.Dirs), "rt/entry")
		b.ReportMetric(float64(vmHWM(b))/(1<<10), "rss-hwm-MiB")

		populateTree(b, filepath.Join(g.dir, name+"-rm"), files, perDir)
		start = time.Now()
		if out, err := exec.Command("rm", "-rf", filepath.Join(g.dir, name+"-rm")).CombinedOutput(); err != nil {
			b.Fatalf("rm -rf: %v: %s", err, out)
		}
		b.ReportMetric(float64(files)/time.Since(start).Seconds(), "rm-rf-files/s")
		b.StartTimer()
	}
}

func envInt(b *testing.B, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive number", name, v)
		}
		return n
	}
	return def
}

// populateTree writes files empty files into directories of perDir under
// root, two levels deep (root/dNNN/eNNN/fNNN).
func populateTree(b *testing.B, root string, files, perDir int) {
	b.Helper()
	dirs := (files + perDir - 1) / perDir
	for d := 0; d < dirs; d++ {
		dir := filepath.Join(root, fmt.Sprintf("d%03d", d/100), fmt.Sprintf("e%03d", d%100))
		if err := os.MkdirAll(dir, 0o777); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < perDir && d*perDir+f < files; f++ {
			if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(f)), nil, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// samplePeakHeap samples HeapInuse every 10 ms until the returned func is
// called, which returns the highest value seen.
func samplePeakHeap() func() uint64 {
	stop := make(chan struct{})
	result := make(chan uint64)
	go func() {
		var peak uint64
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-stop:
				result <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(stop); return <-result }
}

// vmHWM is the process's peak resident set in KiB.
func vmHWM(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkUsageTree walks a tree of NFSP_BENCH_REMOVE_FILES files in
// directories of NFSP_BENCH_REMOVE_PER_DIR on Ganesha with Usage (no
// budget) and reports entries/s, NFS round trips per entry, CPU time of
// the process per 1,000 entries and the peak Go heap above idle; in the
// same run `du -s` of the backing directory gives the local figure.
//
//	go test -run '^$' -bench UsageTree -benchtime 1x ./provisioner/export/wire/
func BenchmarkUsageTree(b *testing.B) {
	files := envInt(b, "NFSP_BENCH_REMOVE_FILES", 100000)
	perDir := envInt(b, "NFSP_BENCH_REMOVE_PER_DIR", 10)
	g := ganesha(b, false)
	var rts atomic.Int64
	fsys := g.open(b, wire.Options{Observer: func(_, _ string, _ time.Duration, _ error) { rts.Add(1) }})
	name := fmt.Sprintf("bench-usage-%d", time.Now().UnixNano())
	populateTree(b, filepath.Join(g.dir, name), files, perDir)
	b.Cleanup(func() { os.RemoveAll(filepath.Join(g.dir, name)) })
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		peak := samplePeakHeap()
		rts.Store(0)
		cpu0 := cpuTime(b)
		start := time.Now()
		c, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		u, err := fsys.Usage(c, name, nil)
		cancel()
		took := time.Since(start)
		cpu := cpuTime(b) - cpu0
		heap := peak()
		if err != nil {
			b.Fatal(err)
		}
		if u.Inodes < uint64(files) {
			b.Fatalf("counted %d entries, want at least %d", u.Inodes, files)
		}
		b.ReportMetric(float64(u.Inodes)/took.Seconds(), "entries/s")
		b.ReportMetric(float64(rts.Load())/float64(u.Inodes), "rt/entry")
		b.ReportMetric(cpu.Seconds()*1000/float64(u.Inodes)*1000, "cpu-ms/1k-entries")
		b.ReportMetric(float64(heap-min(heap, before.HeapInuse))/(1<<20), "peak-heap-MiB")
		start = time.Now()
		if out, err := exec.Command("du", "-s", filepath.Join(g.dir, name)).CombinedOutput(); err != nil {
			b.Fatalf("du: %v: %s", err, out)
		}
		b.ReportMetric(float64(u.Inodes)/time.Since(start).Seconds(), "du-entries/s")
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
