package wire_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nfs-subdir/provisioner/internal/export"
	"github.com/nfs-subdir/provisioner/internal/export/wire"
)

// Benchmarks of the provisioner's operations against the in-process server
// (and Ganesha when configured, see ganesha_test.go). Each reports the NFS
// round trips per operation as "rt/op".

func benchOpen(b *testing.B, where string) (*wire.FS, *atomic.Int64) {
	fsys, rts, _ := benchOpenPopulate(b, where)
	return fsys, rts
}

// benchOpenPopulate also returns a way to write files without NFS.
func benchOpenPopulate(b *testing.B, where string) (*wire.FS, *atomic.Int64, func(testing.TB, string, []byte)) {
	b.Helper()
	var rts atomic.Int64
	o := wire.Options{Observer: func(_, _ string, _ time.Duration, _ error) { rts.Add(1) }}
	switch where {
	case "inprocess":
		srv, fsys := openInProcess(b, o)
		return fsys, &rts, srv.Populate
	default:
		g := ganesha(b, false)
		return g.open(b, o), &rts, g.populate
	}
}

func benchBase(b *testing.B, fsys *wire.FS) string {
	b.Helper()
	base := "bench-" + strconv.FormatInt(int64(b.N), 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	must(b, fsys.MkdirAll(ctx(b), base, export.DirAttrs{Mode: 0o777}))
	b.Cleanup(func() { must(b, fsys.RemoveAll(ctx(b), base, nil)) })
	return base
}

func reportRT(b *testing.B, rts *atomic.Int64) {
	b.ReportMetric(float64(rts.Load())/float64(b.N), "rt/op")
}

func benchMkdirAll(b *testing.B, where string) {
	fsys, rts := benchOpen(b, where)
	base := benchBase(b, fsys)
	c := context.Background() // each call is bounded by the client's timeout
	attrs := export.DirAttrs{Mode: 0o750, UID: 1000, GID: 1000}
	names := make([]string, b.N)
	for i := range names {
		names[i] = base + "/default-data-redis-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	rts.Store(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := fsys.MkdirAll(c, names[i], attrs); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRT(b, rts)
}

func benchMkdirAllParallel(b *testing.B, where string) {
	fsys, rts := benchOpen(b, where)
	base := benchBase(b, fsys)
	c := context.Background() // each call is bounded by the client's timeout
	var next atomic.Int64
	b.ReportAllocs()
	rts.Store(0)
	b.SetParallelism(8) // 16 workers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := base + "/vol-" + strconv.FormatInt(next.Add(1), 10)
			if err := fsys.MkdirAll(c, p, export.DirAttrs{Mode: 0o777}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportRT(b, rts)
}

func benchRename(b *testing.B, where string) {
	fsys, rts := benchOpen(b, where)
	base := benchBase(b, fsys)
	c := context.Background() // each call is bounded by the client's timeout
	names := make([]string, b.N+1)
	for i := range names {
		names[i] = fmt.Sprintf("%s/archived-%d", base, i)
	}
	must(b, fsys.MkdirAll(c, names[0], export.DirAttrs{Mode: 0o777}))
	b.ReportAllocs()
	rts.Store(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := fsys.Rename(c, names[i], names[i+1]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRT(b, rts)
}

func benchRemoveAll(b *testing.B, where string) {
	fsys, rts := benchOpen(b, where)
	base := benchBase(b, fsys)
	c := context.Background() // each call is bounded by the client's timeout
	names := make([]string, b.N)
	for i := range names {
		names[i] = base + "/pvc-" + strconv.Itoa(i)
		must(b, fsys.MkdirAll(c, names[i], export.DirAttrs{Mode: 0o777}))
	}
	b.ReportAllocs()
	rts.Store(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := fsys.RemoveAll(c, names[i], nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRT(b, rts)
}

func BenchmarkMkdirAll(b *testing.B)         { benchMkdirAll(b, "inprocess") }
func BenchmarkMkdirAllParallel(b *testing.B) { benchMkdirAllParallel(b, "inprocess") }
func BenchmarkRename(b *testing.B)           { benchRename(b, "inprocess") }
func BenchmarkRemoveAll(b *testing.B)        { benchRemoveAll(b, "inprocess") }
func BenchmarkRemoveAllTree(b *testing.B)    { benchRemoveAllTree(b, "inprocess") }

func BenchmarkGaneshaMkdirAll(b *testing.B)         { benchMkdirAll(b, "ganesha") }
func BenchmarkGaneshaMkdirAllParallel(b *testing.B) { benchMkdirAllParallel(b, "ganesha") }
func BenchmarkGaneshaRename(b *testing.B)           { benchRename(b, "ganesha") }
func BenchmarkGaneshaRemoveAll(b *testing.B)        { benchRemoveAll(b, "ganesha") }
func BenchmarkGaneshaRemoveAllTree(b *testing.B)    { benchRemoveAllTree(b, "ganesha") }

// RemoveAll of a volume holding 100 files and 10 directories of 10 files.
func benchRemoveAllTree(b *testing.B, where string) {
	fsys, rts, populate := benchOpenPopulate(b, where)
	base := benchBase(b, fsys)
	c := context.Background() // each call is bounded by the client's timeout
	names := make([]string, b.N)
	for i := range names {
		names[i] = base + "/pvc-" + strconv.Itoa(i)
		for d := 0; d < 10; d++ {
			must(b, fsys.MkdirAll(c, fmt.Sprintf("%s/d%d", names[i], d), export.DirAttrs{Mode: 0o777}))
			for f := 0; f < 10; f++ {
				populate(b, fmt.Sprintf("%s/d%d/f%d", names[i], d, f), nil)
			}
		}
		for f := 0; f < 100; f++ {
			populate(b, fmt.Sprintf("%s/f%d", names[i], f), nil)
		}
	}
	b.ReportAllocs()
	rts.Store(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := fsys.RemoveAll(c, names[i], nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRT(b, rts)
}
