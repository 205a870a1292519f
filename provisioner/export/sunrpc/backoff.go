package sunrpc

import (
	"context"
	"time"
)

// Backoff paces the resends of a call the server asked to send again later (NFS3ERR_JUKEBOX,
// NFS4ERR_DELAY, NFS4ERR_GRACE): the first wait is the one it was made with, each next one twice
// the last, a second at most.
type Backoff struct{ next time.Duration }

// NewBackoff returns a Backoff whose first wait is first.
func NewBackoff(first time.Duration) *Backoff { return &Backoff{next: first} }

// Wait waits the next wait, or until ctx ends: then it reports false.
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.next)
	defer t.Stop()
	b.next = min(2*b.next, time.Second)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
