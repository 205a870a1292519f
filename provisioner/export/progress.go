package export

import (
	"sync"
	"time"
)

// ProgressEvery is how often a RemoveAll tells its running total.
const ProgressEvery = time.Second

// RemoveProgress is a RemoveAll's running total: it counts what is removed (from any goroutine)
// and tells the total to the caller's progress function at most every ProgressEvery, and once
// at the end.
type RemoveProgress struct {
	tell func(Removed)
	mu   sync.Mutex
	done Removed
	last time.Time
}

// NewRemoveProgress counts for tell (nil: counting only).
func NewRemoveProgress(tell func(Removed)) *RemoveProgress {
	return &RemoveProgress{tell: tell, last: time.Now()}
}

// Add counts files (non-directories) and dirs removed.
func (p *RemoveProgress) Add(files, dirs uint64) {
	p.mu.Lock()
	p.done.Files += files
	p.done.Dirs += dirs
	p.mu.Unlock()
}

// Done is the total so far.
func (p *RemoveProgress) Done() Removed {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Report tells the total when ProgressEvery has passed since the last time, or when final.
// Call it from the RemoveAll's own goroutine: progress functions need not be safe for
// concurrent use.
func (p *RemoveProgress) Report(final bool) {
	if p.tell == nil || !final && time.Since(p.last) < ProgressEvery {
		return
	}
	p.last = time.Now()
	p.tell(p.Done())
}
