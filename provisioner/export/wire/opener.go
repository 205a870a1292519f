package wire

import (
	"context"
	"fmt"
	"sync"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
)

// Opener opens exports over NFSv3 and keeps one session (connection and
// handle cache) per (server, export) until Close.
type Opener struct {
	o Options

	mu       sync.Mutex
	sessions map[export.Target]*session
	opening  map[export.Target]chan struct{}
	closed   bool
}

var _ export.Opener = (*Opener)(nil)

// NewOpener returns an Opener with the given options.
func NewOpener(o Options) *Opener {
	return &Opener{
		o:        o.withDefaults(),
		sessions: make(map[export.Target]*session),
		opening:  make(map[export.Target]chan struct{}),
	}
}

// Open returns the export share on server (a host name or address, no
// port), mounting it on first use: portmapper GETPORT (unless the ports
// are given), MOUNT MNT and a GETATTR of the root. A failed mount is not
// remembered; the next Open tries again.
func (o *Opener) Open(ctx context.Context, server, share string) (export.FS, error) {
	return o.open(ctx, server, share)
}

func (o *Opener) open(ctx context.Context, server, share string) (*FS, error) {
	k := export.NewTarget(server, share) // one session per export, however it is spelt
	for {
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return nil, sunrpc.ErrClosed
		}
		if s := o.sessions[k]; s != nil {
			o.mu.Unlock()
			return &FS{s: s}, nil
		}
		if ch := o.opening[k]; ch != nil {
			o.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("mount %s:%s: %w", server, share, ctx.Err())
			}
		}
		ch := make(chan struct{})
		o.opening[k] = ch
		o.mu.Unlock()

		s, err := openSession(ctx, server, share, &o.o)

		o.mu.Lock()
		delete(o.opening, k)
		close(ch)
		if err == nil && o.closed {
			s.close()
			err = sunrpc.ErrClosed
		}
		if err != nil {
			o.mu.Unlock()
			return nil, err
		}
		o.sessions[k] = s
		o.mu.Unlock()
		return &FS{s: s}, nil
	}
}

// Close closes every session and waits for their goroutines; calls in
// flight fail and later ones return sunrpc.ErrClosed.
func (o *Opener) Close() error {
	o.mu.Lock()
	o.closed = true
	sessions := o.sessions
	o.sessions = map[export.Target]*session{}
	o.mu.Unlock()
	for _, s := range sessions {
		s.close()
	}
	return nil
}
