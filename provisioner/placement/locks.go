package placement

import (
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// recentTTL is how long a provisioned directory is remembered at most
// while its PV has not reached the informer (normally the record goes when
// the PV shows up, see the provisioner's VolumeSeen). The library retries saving a PV for as
// long as the API server refuses it, so this is long; it only ends the
// record of a PV that is never saved (its claim deleted meanwhile).
const recentTTL = time.Hour

// Locks records, per server (canonical name) and by absolute path, so
// that exports nested on one server see each other, the directories being or just provisioned
// (until their PV shows in the informer) and those being deleted. Delete's
// in-use check reads the informer, which does not yet hold the PV of a
// claim provisioned a moment ago inside the directory being deleted; this
// closes that window both ways: a Delete is put off while a volume inside
// its directory is new, and a Provision inside a directory being deleted
// waits for the Delete.
type Locks struct {
	mu       sync.Mutex
	recent   map[string]map[string]recentVolume // server → dir → the volume provisioned there
	deleting map[string]map[string]int          // server → dir → Deletes in progress
	now      func() time.Time
}

type recentVolume struct {
	pv string
	at time.Time
}

// NewLocks returns empty Locks.
func NewLocks() *Locks {
	return &Locks{recent: map[string]map[string]recentVolume{}, deleting: map[string]map[string]int{}, now: time.Now}
}

// within reports whether dir is base or lies below it (clean paths).
func within(dir, base string) bool {
	return dir == base || base == "/" || strings.HasPrefix(dir, base+"/")
}

// BeginProvision records that pv's directory dir (absolute, on server) is
// being made. It fails while a Delete works on dir or an ancestor of it,
// and while another volume provisioned a moment ago is at, inside or
// around dir (the informer's index does not show it yet). done(false)
// forgets the record (nothing was made); done(true) keeps it until the PV
// is seen.
func (l *Locks) BeginProvision(server, dir, pv string) (done func(made bool), err error) {
	t := export.CanonicalServer(server)
	dir = path.Clean("/" + dir)
	l.mu.Lock()
	defer l.mu.Unlock()
	for d := dir; d != "/"; d = path.Dir(d) {
		if l.deleting[t][d] > 0 {
			return nil, fmt.Errorf("directory %s on %s is being deleted or archived, and %s lies inside it; this is retried once that is done", d, server, dir)
		}
	}
	l.pruneLocked(t)
	for d, r := range l.recent[t] {
		if r.pv != pv && (within(d, dir) || within(dir, d)) {
			return nil, fmt.Errorf("directory %s on %s would be at, inside or around %s of PV %s, provisioned a moment ago; this is retried, and refused if they still overlap", dir, server, d, r.pv)
		}
	}
	if l.recent[t] == nil {
		l.recent[t] = map[string]recentVolume{}
	}
	l.recent[t][dir] = recentVolume{pv: pv, at: l.now()}
	return func(made bool) {
		if made {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if r, ok := l.recent[t][dir]; ok && r.pv == pv {
			delete(l.recent[t], dir)
		}
	}, nil
}

// BeginDelete checks that no volume provisioned recently (whose PV the
// informer does not show yet: the provisioner's VolumeSeen drops the record of one it
// shows) lies at or inside dir, other than pv's own, and records the
// Delete. When there are such volumes it returns their PV names and
// records nothing.
func (l *Locks) BeginDelete(server, dir, pv string) (end func(), users []string) {
	t := export.CanonicalServer(server)
	dir = path.Clean("/" + dir)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneLocked(t)
	for d, r := range l.recent[t] {
		if r.pv != pv && within(d, dir) {
			users = append(users, r.pv)
		}
	}
	if len(users) > 0 {
		return nil, users
	}
	if l.deleting[t] == nil {
		l.deleting[t] = map[string]int{}
	}
	l.deleting[t][dir]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.deleting[t][dir]--; l.deleting[t][dir] <= 0 {
			delete(l.deleting[t], dir)
		}
	}, nil
}

// ForgetVolume drops the record of pv's directory: its Delete has begun,
// so it is no longer a volume the informer has yet to show.
func (l *Locks) ForgetVolume(server, pv string) {
	t := export.CanonicalServer(server)
	l.mu.Lock()
	defer l.mu.Unlock()
	for d, r := range l.recent[t] {
		if r.pv == pv {
			delete(l.recent[t], d)
		}
	}
}

func (l *Locks) pruneLocked(t string) {
	cutoff := l.now().Add(-recentTTL)
	for d, r := range l.recent[t] {
		if r.at.Before(cutoff) {
			delete(l.recent[t], d)
		}
	}
}
