package volume

import (
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// RemovalObserver is told what removals removed, for metrics.
type RemovalObserver interface {
	RemovedEntries(server string, files, dirs uint64)
}

// RemoveEventEvery is how often a long removal reports on its object (a PV, or a class).
const RemoveEventEvery = 10 * time.Second

// RemovalProgress is a RemoveAll progress function of a removal on server: it counts the removed
// entries in obs (when not nil) as they go, tells every total to each, and to event at most every
// RemoveEventEvery (an Event on the object being removed for).
func RemovalProgress(obs RemovalObserver, server string, event func(export.Removed), each ...func(export.Removed)) func(export.Removed) {
	var last export.Removed
	lastEvent := time.Now()
	return func(r export.Removed) {
		if obs != nil {
			obs.RemovedEntries(server, r.Files-last.Files, r.Dirs-last.Dirs)
		}
		last = r
		for _, fn := range each {
			fn(r)
		}
		if time.Since(lastEvent) >= RemoveEventEvery {
			lastEvent = time.Now()
			event(r)
		}
	}
}

// ReasonRemovingDirectory is the Event that tells how far a long removal got.
const ReasonRemovingDirectory = "RemovingDirectory"
