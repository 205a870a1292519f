package wire

import (
	"context"
	"fmt"
	"sync"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
)

// Opener opens exports over NFSv3 or NFSv4.1 and keeps one session (connection and handle
// cache) per (server, export, version) until Close.
type Opener struct {
	o Options

	mu       sync.Mutex
	sessions map[sessionKey]*session
	opening  map[sessionKey]chan struct{}
	chosen   map[export.Target]Version // what VersionAuto chose for each export
	closed   bool
}

var _ export.Opener = (*Opener)(nil)

// sessionKey is an export and the version asked for it.
type sessionKey struct {
	export.Target
	v Version
}

// NewOpener returns an Opener with the given options.
func NewOpener(o Options) *Opener {
	return &Opener{
		o:        o.withDefaults(),
		sessions: make(map[sessionKey]*session),
		opening:  make(map[sessionKey]chan struct{}),
		chosen:   make(map[export.Target]Version),
	}
}

// Open returns the export share on server (a host name or address, no port), opening it on
// first use over the version ctx carries (export.WithVersion), else Options.Version: over
// NFSv3 portmapper GETPORT (unless the ports are given), MOUNT MNT and a GETATTR of the root;
// over NFSv4.1 a session, then PUTROOTFH and a LOOKUP per element of share. A failed open is not
// remembered; the next Open tries again.
func (o *Opener) Open(ctx context.Context, server, share string) (export.FS, error) {
	return o.open(ctx, server, share)
}

func (o *Opener) open(ctx context.Context, server, share string) (*FS, error) {
	opts := o.o
	if v := export.VersionFrom(ctx); v != "" {
		var err error
		if opts.Version, err = ParseVersion(string(v), o.o.Version); err != nil {
			return nil, err
		}
	}
	k := sessionKey{export.NewTarget(server, share), opts.Version} // one session per export, however it is spelt
	for {
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return nil, sunrpc.ErrClosed
		}
		if k.v == VersionAuto {
			if v, ok := o.chosen[k.Target]; ok {
				k.v, opts.Version = v, v // what auto chose before: that version's one session
			}
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

		s, err := openSession(ctx, server, share, &opts)

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
		if k.v == VersionAuto {
			// Kept under the version chosen, so that a volume opened as auto and later by the
			// nfsvers= its PV names shares one session and one handle cache.
			o.chosen[k.Target] = s.version
			k.v = s.version
			if had := o.sessions[k]; had != nil {
				o.mu.Unlock()
				s.close()
				return &FS{s: had}, nil
			}
		}
		target := k.Target
		s.forgetElsewhere = func(path []string) { o.forget(target, s, path) }
		o.sessions[k] = s
		o.mu.Unlock()
		return &FS{s: s}, nil
	}
}

// forget drops path from the handle caches of the sessions of target other than from (the
// export's session over the other version): a rename or removal through one must not leave the
// other's cache pointing at what moved.
func (o *Opener) forget(target export.Target, from *session, path []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, s := range o.sessions {
		if k.Target == target && s != from {
			s.cache.forget(path)
		}
	}
}

// Close closes every session and waits for their goroutines; calls in
// flight fail and later ones return sunrpc.ErrClosed.
func (o *Opener) Close() error {
	o.mu.Lock()
	o.closed = true
	sessions := o.sessions
	o.sessions = map[sessionKey]*session{}
	o.mu.Unlock()
	for _, s := range sessions {
		s.close()
	}
	return nil
}
