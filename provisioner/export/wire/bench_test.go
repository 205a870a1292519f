package wire_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire"
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
	default: // "ganesha-3", "ganesha-4.1"
		g := ganesha(b, false)
		o.Version = wire.Version(strings.TrimPrefix(where, "ganesha-"))
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

// timed runs op(0..b.N-1) as the measured part of a benchmark (what came before was set-up) and
// reports the NFS round trips per operation as "rt/op".
func timed(b *testing.B, rts *atomic.Int64, op func(i int) error) {
	b.Helper()
	b.ReportAllocs()
	rts.Store(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := op(i); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rts.Load())/float64(b.N), "rt/op")
}

// bg bounds nothing: each call is bounded by the client's timeout.
var bg = context.Background()

func benchMkdirAll(b *testing.B, where string) {
	fsys, rts := benchOpen(b, where)
	base := benchBase(b, fsys)
	attrs := export.DirAttrs{Mode: 0o750, UID: 1000, GID: 1000}
	timed(b, rts, func(i int) error { return fsys.MkdirAll(bg, base+"/default-data-redis-"+strconv.Itoa(i), attrs) })
}

func benchMkdirAllParallel(b *testing.B, where string) {
	fsys, rts := benchOpen(b, where)
	base := benchBase(b, fsys)
	var next atomic.Int64
	b.ReportAllocs()
	rts.Store(0)
	b.SetParallelism(8) // 16 workers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := base + "/vol-" + strconv.FormatInt(next.Add(1), 10)
			if err := fsys.MkdirAll(bg, p, export.DirAttrs{Mode: 0o777}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(rts.Load())/float64(b.N), "rt/op")
}

func benchRename(b *testing.B, where string) {
	fsys, rts := benchOpen(b, where)
	base := benchBase(b, fsys)
	name := func(i int) string { return fmt.Sprintf("%s/archived-%d", base, i) }
	must(b, fsys.MkdirAll(bg, name(0), export.DirAttrs{Mode: 0o777}))
	timed(b, rts, func(i int) error { return fsys.Rename(bg, name(i), name(i+1)) })
}

func benchRemoveAll(b *testing.B, where string) {
	fsys, rts := benchOpen(b, where)
	base := benchBase(b, fsys)
	name := func(i int) string { return base + "/pvc-" + strconv.Itoa(i) }
	for i := 0; i < b.N; i++ {
		must(b, fsys.MkdirAll(bg, name(i), export.DirAttrs{Mode: 0o777}))
	}
	timed(b, rts, func(i int) error { return fsys.RemoveAll(bg, name(i), nil) })
}

func BenchmarkMkdirAll(b *testing.B)         { benchMkdirAll(b, "inprocess") }
func BenchmarkMkdirAllParallel(b *testing.B) { benchMkdirAllParallel(b, "inprocess") }
func BenchmarkRename(b *testing.B)           { benchRename(b, "inprocess") }
func BenchmarkRemoveAll(b *testing.B)        { benchRemoveAll(b, "inprocess") }
func BenchmarkRemoveAllTree(b *testing.B)    { benchRemoveAllTree(b, "inprocess") }

func BenchmarkGaneshaMkdirAll(b *testing.B)         { ganeshaVersions(b, benchMkdirAll) }
func BenchmarkGaneshaMkdirAllParallel(b *testing.B) { ganeshaVersions(b, benchMkdirAllParallel) }
func BenchmarkGaneshaRename(b *testing.B)           { ganeshaVersions(b, benchRename) }
func BenchmarkGaneshaRemoveAll(b *testing.B)        { ganeshaVersions(b, benchRemoveAll) }
func BenchmarkGaneshaRemoveAllTree(b *testing.B)    { ganeshaVersions(b, benchRemoveAllTree) }

// ganeshaVersions runs a benchmark on Ganesha over each NFS version, side by side as the
// sub-benchmarks nfs3 and nfs4.1.
func ganeshaVersions(b *testing.B, bench func(b *testing.B, where string)) {
	for _, v := range benchVersions {
		b.Run("nfs"+string(v), func(b *testing.B) { bench(b, "ganesha-"+string(v)) })
	}
}

var benchVersions = []wire.Version{wire.Version3, wire.Version41}

// RemoveAll of a volume holding 100 files and 10 directories of 10 files.
func benchRemoveAllTree(b *testing.B, where string) {
	fsys, rts, populate := benchOpenPopulate(b, where)
	base := benchBase(b, fsys)
	name := func(i int) string { return base + "/pvc-" + strconv.Itoa(i) }
	for i := 0; i < b.N; i++ {
		for d := 0; d < 10; d++ {
			must(b, fsys.MkdirAll(bg, fmt.Sprintf("%s/d%d", name(i), d), export.DirAttrs{Mode: 0o777}))
			for f := 0; f < 10; f++ {
				populate(b, fmt.Sprintf("%s/d%d/f%d", name(i), d, f), nil)
			}
		}
		for f := 0; f < 100; f++ {
			populate(b, fmt.Sprintf("%s/f%d", name(i), f), nil)
		}
	}
	timed(b, rts, func(i int) error { return fsys.RemoveAll(bg, name(i), nil) })
}
