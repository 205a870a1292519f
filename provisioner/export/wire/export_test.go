package wire

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Test-only access to the concrete types.

// OpenFS is Open with the concrete type.
func (o *Opener) OpenFS(ctx context.Context, server, share string) (*FS, error) {
	return o.open(ctx, server, share)
}

// Ping checks that the export can be mounted (the first time) and that the server's NFS program
// answers a NULL call.
func (o *Opener) Ping(ctx context.Context, server, share string) error {
	fsys, err := o.open(ctx, server, share)
	if err != nil {
		return err
	}
	return fsys.Ping(ctx)
}

// Ping sends an NFS NULL call.
func (f *FS) Ping(ctx context.Context) error {
	if err := f.s.nfs.null(ctx); err != nil {
		return fmt.Errorf("ping %s:%s: %w", f.s.server, f.s.share, err)
	}
	return nil
}

// OpenForTest opens server:share on a new Opener with options o (closed when the test ends),
// failing the test when it cannot.
func OpenForTest(tb testing.TB, o Options, server, share string) *FS {
	tb.Helper()
	op := NewOpener(o)
	tb.Cleanup(func() { op.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fsys, err := op.open(ctx, server, share)
	if err != nil {
		tb.Fatalf("open %s:%s: %v", server, share, err)
	}
	return fsys
}
