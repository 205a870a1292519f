package wire_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire"
)

// 100 concurrent provisions, each retried until it succeeds as the
// provisioner's controller would, while the server is killed and restarted
// (forgetting every handle): every directory ends up made and nothing
// panics. Across one restart, the only failures are calls made while the
// server was down (the stale handles are refreshed and the operations
// retried); restarts in quick succession can also fail a retry.
func TestProvisionAcrossRestarts(t *testing.T) {
	t.Run("one restart", func(t *testing.T) {
		kinds := provisionAcrossRestarts(t, 1)
		for k := range kinds {
			if !strings.Contains(k, "connection refused") {
				t.Errorf("failure other than the server being down: %s", k)
			}
		}
	})
	t.Run("three restarts", func(t *testing.T) { provisionAcrossRestarts(t, 3) })
}

func provisionAcrossRestarts(t *testing.T, restarts int) map[string]int {
	const claims = 100
	srv, fsys := openInProcess(t, wire.Options{Timeout: 5 * time.Second})
	must(t, fsys.MkdirAll(ctx(t), "ns", attrs0777))

	var mu sync.Mutex
	kinds := map[string]int{}
	var done atomic.Int32
	var failures atomic.Int32
	progress := make(chan struct{}, claims)
	var wg sync.WaitGroup
	for i := 0; i < claims; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			p := fmt.Sprintf("ns/pvc-%03d", i)
			for {
				err := fsys.MkdirAll(c, p, export.DirAttrs{Mode: 0o750, UID: 1000, GID: 1000})
				if err == nil {
					break
				}
				failures.Add(1)
				mu.Lock()
				kinds[err.Error()]++
				mu.Unlock()
				if c.Err() != nil {
					t.Errorf("%s: gave up: %v", p, err)
					return
				}
			}
			done.Add(1)
			progress <- struct{}{}
		}(i)
	}
	// Restart after every quarter of the claims has been provisioned.
	for r := 1; r <= restarts; r++ {
		for done.Load() < int32(r*claims/(restarts+1)) {
			select {
			case <-progress:
			case <-time.After(30 * time.Second):
				t.Fatalf("no progress: %d of %d done", done.Load(), claims)
			}
		}
		must(t, srv.Restart())
	}
	wg.Wait()
	for i := 0; i < claims; i++ {
		fi, err := os.Stat(filepath.Join(srv.Dir, "ns", fmt.Sprintf("pvc-%03d", i)))
		if err != nil || !fi.IsDir() {
			t.Errorf("pvc-%03d: %v", i, err)
		}
	}
	t.Logf("%d claims, %d restarts, %d failed attempts retried: %v", claims, restarts, failures.Load(), kinds)
	return kinds
}
