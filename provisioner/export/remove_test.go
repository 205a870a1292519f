package export_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// ghostTree is a server whose listing of "vol" always shows files that, asked to remove them, it
// says are not there.
type ghostTree struct{ unlinks atomic.Int64 }

func (g *ghostTree) Parent(context.Context, string) (export.Node, error) { return "root", nil }
func (g *ghostTree) Open(context.Context, export.Node, string, *export.RemoveEntry) (export.Node, bool, error) {
	return "vol", true, nil
}
func (g *ghostTree) List(_ context.Context, _ export.Node, at export.DirCursor) ([]export.RemoveEntry, export.DirCursor, bool, error) {
	if at.Cookie >= 3 {
		return nil, at, true, nil
	}
	var ents []export.RemoveEntry
	for i := 0; i < 100; i++ {
		ents = append(ents, export.RemoveEntry{Name: fmt.Sprint("ghost", at.Cookie, "-", i)})
	}
	next := export.DirCursor{Cookie: at.Cookie + 1}
	return ents, next, false, nil
}
func (g *ghostTree) Unlink(context.Context, export.Node, string) error {
	g.unlinks.Add(1)
	return fmt.Errorf("remove: %w", export.ErrNotExist)
}
func (g *ghostTree) Rmdir(context.Context, export.Node, string) error {
	return fmt.Errorf("rmdir: %w", export.ErrNotEmpty)
}
func (g *ghostTree) Close(export.Node) {}

// A listing that keeps showing entries nobody can remove ends the removal after a few listings,
// and those entries are not counted as removed.
func TestRemoveAllGhostEntries(t *testing.T) {
	g := &ghostTree{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last export.Removed
	counted := export.NewRemoveProgress(func(r export.Removed) { last = r })
	err := export.RemoveAll(ctx, g, "vol", export.RemoveOptions{Files: 8, Progress: counted})
	counted.Report(true)
	if err == nil || !strings.Contains(err.Error(), "keeps showing") {
		t.Fatalf("RemoveAll of a directory of ghosts: %v after %d unlinks, want it to give up", err, g.unlinks.Load())
	}
	if n := g.unlinks.Load(); n > 2000 {
		t.Errorf("%d unlinks before giving up", n)
	}
	if last.Files != 0 {
		t.Errorf("%d files counted as removed; none was", last.Files)
	}
}
