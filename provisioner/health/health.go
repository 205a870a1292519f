// Package health serves /healthz and /readyz. Ready means the default NFS
// export answers; the result is cached briefly so probes cost at most one
// round trip every few seconds.
package health

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// Checker reports whether the default export is reachable.
type Checker struct {
	Opener        export.Opener
	Server, Share string
	Timeout       time.Duration // per check; 0 means 5s
	CacheFor      time.Duration // how long a result is reused; 0 means 5s

	mu      sync.Mutex
	checked time.Time
	last    error
}

// Check opens the export and stats its root.
func (c *Checker) Check(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cacheFor := c.CacheFor
	if cacheFor == 0 {
		cacheFor = 5 * time.Second
	}
	if !c.checked.IsZero() && time.Since(c.checked) < cacheFor {
		return c.last
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c.last = c.check(ctx)
	c.checked = time.Now()
	return c.last
}

func (c *Checker) check(ctx context.Context) error {
	if c.Server == "" || c.Share == "" {
		return nil // no default export: every class names its own
	}
	fsys, err := c.Opener.Open(ctx, c.Server, c.Share)
	if err != nil {
		return err
	}
	_, err = fsys.Stat(ctx, ".")
	return err
}

// Register adds /healthz (the process serves HTTP) and /readyz (the default
// export answers) to mux.
func (c *Checker) Register(mux *http.ServeMux) {
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := c.Check(r.Context()); err != nil {
			http.Error(w, "NFS export "+c.Server+":"+c.Share+" not reachable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}
