// Package clone fills a new claim's volume with a copy of another claim's: it checks the source,
// protects it with a finalizer for the copy's duration, copies in the background into the
// install's staging directory (export.CopyTree), reports progress in Events and metrics, and
// renames the finished copy into place in the Provision that returns its PV; its sweeper
// removes what interrupted copies leave and the protection no copy needs. It calls volume,
// export and the API server (claims, PVs, Events); the provisioner calls it when it chooses a
// claim's content.
package clone

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/usage"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// Event reasons of a clone, on the claim being filled.
const (
	ReasonCloneStarted  = "CloneStarted"
	ReasonCloneProgress = "CloneProgress"
	ReasonCloneFinished = "CloneFinished"
	ReasonCloneFailed   = "CloneFailed"
)

// stagingMode lets each copied object be made by its own owner (root_squash); no tenant's mount
// reaches the export root.
const stagingMode export.Mode = 0o1777

// CloneProgressInterval is the first interval between a running clone's progress Events; it
// doubles up to maxProgressInterval, so that a long copy stays within the Event rate client-go
// allows per object and its CloneFinished Event is never the one dropped.
var CloneProgressInterval = 15 * time.Second

const maxProgressInterval = 10 * time.Minute

// Observer is told about copies, for metrics.
type Observer interface {
	// ClonesRunning is told when a copy starts (+1) and ends (-1); CloneCopied the bytes it
	// copied to server since it was last told; CloneEnded how long a copy took.
	ClonesRunning(delta int)
	CloneCopied(server string, bytes uint64)
	CloneEnded(took time.Duration, err error)
}

// Config is what a Cloner needs.
type Config struct {
	Name      string // PROVISIONER_NAME: sources must be volumes it made
	Namespace string // its namespace (POD_NAMESPACE): with Name, it names the install's staging directory
	Gate      *export.Gate
	Locator   *volume.Locator
	Volumes   volume.Index
	// Claims reads claims and PVs and protects sources; nil refuses every clone.
	Claims     Claims
	Namespaces volume.NamespaceUIDs
	Recorder   record.EventRecorder
	Observe    Observer // optional
	// Background is the context copies run under (they outlive the Provision that starts them);
	// its end stops them. Default: context.Background().
	Background context.Context
	// Parallel is how many copies run at once (default 2; each is itself parallel).
	Parallel int
	// Timeout bounds the NFS work of one Provision; RemoveTimeout the removal of a failed copy
	// and the sweep of one export.
	Timeout, RemoveTimeout time.Duration
}

// Cloner runs the copies of clones and sweeps what they leave.
type Cloner struct {
	cfg  Config
	jobs *cloneJobs
}

// New returns a Cloner.
func New(cfg Config) *Cloner {
	if cfg.Background == nil {
		cfg.Background = context.Background()
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	if cfg.Recorder == nil {
		cfg.Recorder = &record.FakeRecorder{}
	}
	return &Cloner{cfg: cfg, jobs: newCloneJobs(cfg.Parallel)}
}

// Clone is the content of a claim that is a clone: a copy of its data source.
type Clone struct{ c *Cloner }

// For is the content of v, a clone, or a refusal of the class or of this provisioner.
func (c *Cloner) For(v volume.Volume) (*Clone, error) {
	_, _, sourceName, _ := dataSourceOf(v.Claim)
	if c.cfg.Claims == nil {
		return nil, volume.Refuse("cannot clone claim %s: this provisioner runs without access to claims", sourceName)
	}
	if !v.Own {
		return nil, volume.Refuse("cannot clone claim %s: the class's pathPattern gives claims directories they may share; a clone needs a directory of its own (leave pathPattern unset, or include ${.PV.name} in it)", sourceName)
	}
	return &Clone{c: c}, nil
}

// Fill puts the copy in v's place once it is complete (Provision's Content): the first call
// protects the source and starts the copy; while it runs, calls return errCloneRunning at once.
func (cl *Clone) Fill(ctx context.Context, v volume.Volume) error { return cl.c.provisionClone(ctx, v) }

// cloneJob is one attempt at one claim's copy, running in the background: Provision starts it
// and returns at once; the claim comes back to Provision when the job annotates it at its end.
type cloneJob struct {
	v         volume.Volume
	source    *cloneSource
	attempt   string // names this attempt's staging directory and its end's annotation
	cancel    context.CancelFunc
	claimGone atomic.Bool     // the claim was deleted: stopped, and cleaned up
	done      context.Context // ended (canceled) when the copy has ended
	end       context.CancelFunc
	err       error     // once done
	retryAt   time.Time // when a failed attempt may be followed by the next
}

// cloneJobs are the running and finished copies, by claim UID.
type cloneJobs struct {
	mu    sync.Mutex
	jobs  map[types.UID]*cloneJob
	slots chan struct{} // copies running at once
	root  string        // stagingRoot, once known
	// sourceMu is held from the check to the change of a source's protection, and from
	// protecting a source to registering the job that copies it.
	sourceMu sync.Mutex
	// byNamespace is a slot per namespace: its copies run one at a time.
	byNamespace map[string]chan struct{}
	// retries spaces the attempts at one claim's copy after failures, exponentially.
	retries workqueue.TypedRateLimiter[types.UID]
}

// namespaceSlot is the namespace's one slot (made on first use; the map grows with the
// namespaces that ever cloned, a channel each).
func (c *cloneJobs) namespaceSlot(namespace string) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byNamespace == nil {
		c.byNamespace = map[string]chan struct{}{}
	}
	slot, ok := c.byNamespace[namespace]
	if !ok {
		slot = make(chan struct{}, 1)
		c.byNamespace[namespace] = slot
	}
	return slot
}

func newCloneJobs(parallel int) *cloneJobs {
	return &cloneJobs{jobs: map[types.UID]*cloneJob{}, slots: make(chan struct{}, max(parallel, 1)), retries: newRetries()}
}

func (c *cloneJobs) get(uid types.UID) *cloneJob {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jobs[uid]
}

func (c *cloneJobs) forget(uid types.UID, job *cloneJob) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jobs[uid] == job {
		delete(c.jobs, uid)
	}
}

func (j *cloneJob) running() bool { return j.done.Err() == nil }

// stagedBy reports whether a running job copies into the staging directory name.
func (c *cloneJobs) stagedBy(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, j := range c.jobs {
		if j.running() && j.v.PV+"."+j.attempt == name {
			return true
		}
	}
	return false
}

// sourcing reports whether a running job other than except copies the claim namespace/name.
func (c *cloneJobs) sourcing(namespace, name string, except *cloneJob) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, j := range c.jobs {
		if j != except && j.running() && j.source.claim.Namespace == namespace && j.source.claim.Name == name {
			return true
		}
	}
	return false
}

// errCloneRunning tells the library to leave the claim until its copy ends (no Event, no retry).
var errCloneRunning = &controller.IgnoredError{Reason: "its clone is being copied"}

// Backoff between failed attempts at one clone: a copy that fails again and again (a file the
// provisioner may not read) is not started over at once.
const (
	cloneRetryFirst = 10 * time.Second
	cloneRetryMax   = 10 * time.Minute
)

func newRetries() workqueue.TypedRateLimiter[types.UID] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[types.UID](cloneRetryFirst, cloneRetryMax)
}

// provisionClone fills v's directory with a copy of its data source. The first call protects the
// source and starts the copy; while it runs, calls return at once; once it has been renamed into
// place nil is returned and the provisioner makes the PV. A failed copy is the error of the calls
// until its backoff ends (the library retries them with its own), and the next call after it
// starts again from nothing.
func (c *Cloner) provisionClone(ctx context.Context, v volume.Volume) error {
	ctx, cancel := context.WithTimeout(ctx, cloneCallTimeout) // never waits for the copy itself
	defer cancel()
	claim := v.Claim
	_, _, sourceName, _ := dataSourceOf(claim)
	if job := c.jobs.get(claim.UID); job != nil {
		if job.running() {
			return errCloneRunning
		}
		if job.err != nil && time.Now().Before(job.retryAt) {
			return fmt.Errorf("%w; the copy starts again in %s", job.err, time.Until(job.retryAt).Round(time.Second))
		}
		c.jobs.forget(claim.UID, job)
	}
	// A finished copy waits in staging (<pv>.<attempt>.done) and is renamed into place here, in
	// the call that returns its PV, at a path only this claim has: a directory there is this
	// claim's copy, renamed by a call whose PV was not saved. So a copy is in the claim's place
	// only when its PV is made, and every copy that never gets there is the staging sweep's.
	placed, err := c.placeFinishedCopy(ctx, v)
	if err != nil {
		return err
	}
	if placed {
		// The copy is this claim's directory: its PV is made now. A source the API server does not
		// let go of yet is released by the sweep.
		if err := c.releaseSource(ctx, claim.Namespace, sourceName, nil, claim.UID); err != nil {
			klog.FromContext(ctx).Error(err, "release the source claim; the clone sweep retries", "pvc", klog.KObj(claim), "source", sourceName)
		}
		return nil
	}
	src, err := c.sourceOf(ctx, claim)
	if err != nil {
		return err
	}
	if v.Class.Capacity.Enabled {
		err := c.cfg.Gate.Do(ctx, v.Server, v.Share, c.cfg.Timeout, func(ctx context.Context, fsys export.FS) error {
			return usage.CheckCapacity(ctx, fsys, v)
		})
		if err != nil {
			return err
		}
	}
	// Protect and register under the source lock: a release (the sweep's, another job's) sees
	// either no protection to keep or this job.
	c.jobs.sourceMu.Lock()
	defer c.jobs.sourceMu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	if err := c.cfg.Claims.Protect(pctx, src.claim.Namespace, src.claim.Name, src.claim.UID); err != nil {
		return fmt.Errorf("protect the source claim %s from deletion during the copy: %w", src.claim.Name, err)
	}
	c.startClone(v, src)
	return errCloneRunning
}

// placeFinishedCopy renames this claim's finished copy from staging into its place, and reports
// whether the claim's directory is there (renamed now or by an earlier call).
func (c *Cloner) placeFinishedCopy(ctx context.Context, v volume.Volume) (placed bool, err error) {
	root, err := c.stagingRoot(ctx)
	if err != nil {
		return false, err
	}
	err = c.cfg.Gate.Do(ctx, v.Server, v.Share, c.cfg.Timeout, func(ctx context.Context, fsys export.FS) error {
		if _, err := fsys.Stat(ctx, v.Dir); err == nil || !errors.Is(err, export.ErrNotExist) {
			placed = err == nil
			return err
		}
		done, err := finishedCopy(ctx, fsys, root, v.PV)
		if err != nil || done == "" {
			return err
		}
		if parent := path.Dir(v.Dir); parent != "." {
			if err := fsys.MkdirAll(ctx, parent, v.ParentAttrs); err != nil {
				return fmt.Errorf("create the parent directories of %s: %w%s", v.Dir, err, volume.Hint(err))
			}
		}
		if err := fsys.Rename(ctx, done, v.Dir); err != nil {
			return fmt.Errorf("move the copy %s into place at %s: %w", done, v.Dir, err)
		}
		placed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("the clone's directory %s on %s:%s: %w", v.Dir, v.Server, v.Share, err)
	}
	return placed, nil
}

// doneSuffix marks a staging directory whose copy is complete.
const doneSuffix = ".done"

// finishedCopy is the staging path of a complete copy for PV pv, "" when there is none.
func finishedCopy(ctx context.Context, fsys export.FS, root, pv string) (string, error) {
	var found string
	err := listStaging(ctx, fsys, root, func(name string) error {
		if found == "" && strings.HasPrefix(name, pv+".") && strings.HasSuffix(name, doneSuffix) {
			found = path.Join(root, name)
		}
		return nil
	})
	return found, err
}

// listStaging calls each with the name of every entry of the staging directory root (none when
// it does not exist), one listing page at a time.
func listStaging(ctx context.Context, fsys export.FS, root string, each func(name string) error) error {
	tree := fsys.Tree()
	dir, _, err := tree.OpenDir(ctx, root)
	if errors.Is(err, export.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var at export.DirCursor
	for {
		ents, next, eof, err := tree.ReadDir(ctx, dir, at)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := each(e.Name); err != nil {
				return err
			}
		}
		if eof || len(ents) == 0 && next == at {
			return nil
		}
		at = next
	}
}

// releaseSource removes the clone protection from the claim namespace/name unless a running job
// other than except still copies it or a pending claim other than exceptClaim (its copy to come)
// names it.
func (c *Cloner) releaseSource(ctx context.Context, namespace, name string, except *cloneJob, exceptClaim types.UID) error {
	c.jobs.sourceMu.Lock()
	defer c.jobs.sourceMu.Unlock()
	if c.jobs.sourcing(namespace, name, except) {
		return nil
	}
	claims, err := c.cfg.Claims.Cached()
	if err != nil {
		return err
	}
	if c.clonesToCome(claims, exceptClaim)[namespace+"/"+name] {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	if err := c.cfg.Claims.Unprotect(ctx, namespace, name); err != nil {
		return fmt.Errorf("release the source claim %s: %w", name, err)
	}
	return nil
}

// cloneCallTimeout bounds one Provision of a clone: a few API and NFS calls.
const cloneCallTimeout = 2 * time.Minute

// apiTimeout bounds each API call a clone makes outside the library's.
const apiTimeout = 30 * time.Second

func (c *Cloner) startClone(v volume.Volume, src *cloneSource) {
	ctx, cancel := context.WithCancel(c.cfg.Background)
	job := &cloneJob{v: v, source: src, attempt: newAttempt(), cancel: cancel}
	job.done, job.end = context.WithCancel(context.Background())
	c.jobs.mu.Lock()
	c.jobs.jobs[v.Claim.UID] = job
	c.jobs.mu.Unlock()
	go func() {
		defer cancel()
		job.err = c.runClone(ctx, job)
		status := "copied"
		if job.err == nil {
			c.jobs.retries.Forget(v.Claim.UID)
		} else {
			job.retryAt = time.Now().Add(c.jobs.retries.When(v.Claim.UID))
			status = "failed"
		}
		job.end()
		if ctx.Err() != nil && !job.claimGone.Load() {
			return // the provisioner stops: the next leader starts the copy again
		}
		// Bring the claim back to the controller, which finishes it (or reports the failure). The
		// attempt makes each end a change, so that a second failure is one too.
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
		defer acancel()
		if err := c.cfg.Claims.Annotate(actx, v.Claim.Namespace, v.Claim.Name, v.Claim.UID, AnnCloneStatus, status+" "+job.attempt); err != nil {
			klog.FromContext(ctx).Error(err, "clone ended, but its claim could not be updated; the informer's resync finishes it", "pvc", klog.KObj(v.Claim))
		}
	}()
}

// newAttempt names one attempt at a copy: its staging directory is <pv>.<attempt>, so that no
// cleanup of an earlier attempt (its own, an old leader's, the sweep's) touches a later one.
func newAttempt() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// runClone copies the source into this attempt's staging directory, then renames it into place.
// When it returns, the staging directory is gone and the source released unless the provisioner
// is stopping (the next leader starts again and its sweep removes the attempt).
func (c *Cloner) runClone(ctx context.Context, job *cloneJob) (err error) {
	v := job.v
	ctx = export.WithVersion(ctx, v.Class.Version) // the new volume's export, over its class's version
	logger := klog.FromContext(ctx).WithValues("pvc", klog.KObj(v.Claim), "source", job.source.String())
	// One copy per namespace at a time, then one of the install's slots: a tenant with many
	// clones does not keep another's waiting behind all of them.
	own := c.jobs.namespaceSlot(v.Claim.Namespace)
	for _, slots := range []chan struct{}{own, c.jobs.slots} {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	root, err := c.stagingRoot(ctx)
	if err != nil {
		return err
	}
	staging := path.Join(root, v.PV+"."+job.attempt)
	start := time.Now()
	c.observeClones(1)
	defer func() {
		c.observeClones(-1)
		c.observeCloneEnd(time.Since(start), err)
		if ctx.Err() != nil && !job.claimGone.Load() {
			logger.Info("clone stopped with the provisioner; the next leader starts it again", "staging", staging)
			return
		}
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.RemoveTimeout)
		defer cancel()
		if err != nil {
			rerr := c.cfg.Gate.Do(cleanup, v.Server, v.Share, c.cfg.RemoveTimeout, func(ctx context.Context, fsys export.FS) error {
				return fsys.RemoveAll(ctx, staging, nil)
			})
			removed := "it was removed"
			if rerr != nil {
				logger.Error(rerr, "remove a failed clone's staging directory; the clone sweep retries", "staging", staging)
				removed = "the clone sweep removes what it copied"
			}
			if !job.claimGone.Load() {
				c.cfg.Recorder.Eventf(v.Claim, v1.EventTypeWarning, ReasonCloneFailed, "copy of %s failed after %s (%s; it starts again from nothing): %v", job.source, time.Since(start).Round(time.Second), removed, err)
			}
		}
		if uerr := c.releaseSource(cleanup, job.source.claim.Namespace, job.source.claim.Name, job, v.Claim.UID); uerr != nil {
			logger.Error(uerr, "release the source claim; the clone sweep retries")
		}
	}()
	var copied export.Copied
	// The source over the version its PV mounts with, the copy over its class's.
	err = c.cfg.Gate.Do(export.WithVersion(ctx, job.source.loc.Version), job.source.loc.Server, job.source.loc.Share, cloneTimeout, func(ctx context.Context, from export.FS) error {
		return c.cfg.Gate.Do(export.WithVersion(ctx, v.Class.Version), v.Server, v.Share, cloneTimeout, func(ctx context.Context, to export.FS) error {
			var err error
			copied, err = c.copyClone(ctx, job, from, to, staging)
			return err
		})
	})
	if err != nil {
		return err
	}
	took := time.Since(start)
	c.cfg.Recorder.Eventf(v.Claim, v1.EventTypeNormal, ReasonCloneFinished, "copied %s: %s in %s (%s)%s", job.source, copiedText(copied), took.Round(time.Second), rateText(copied.Bytes, took), skippedText(copied))
	logger.Info("clone copied", "files", copied.Files, "bytes", copied.Bytes, "took", took)
	return nil
}

// cloneTimeout bounds one clone: long enough for terabytes at a slow pace, short enough that a
// copy that stopped moving ends. Each copy is bounded further by what its source justifies
// (copyTimeout).
const cloneTimeout = 24 * time.Hour

// What a copy's source justifies: a base, plus its used bytes at a slow rate, plus a time per
// entry. A tree whose files read as far more than they use (a huge sparse file: its holes read as
// zeros) cannot hold one of the install's copy slots for long. Used bytes are what the server
// reports (compressed on a compressing file system), so the rate is low: a tree compressed n:1
// copies in time while the copy reads faster than n × 2 MiB/s.
var (
	copyTimeBase     = 10 * time.Minute
	copyTimePerEntry = 20 * time.Millisecond
	copyMinRate      = float64(2 << 20) // bytes per second: slow enough for a 50:1 compressing server at 100 MiB/s
)

// errOvertime ends a copy that took longer than its source justifies.
var errOvertime = errors.New("copy out of time")

// copyTimeout is how long copying a source of that usage may take.
func copyTimeout(total export.Usage) time.Duration {
	d := copyTimeBase + time.Duration(float64(total.Bytes)/copyMinRate*float64(time.Second)) + time.Duration(total.Inodes)*copyTimePerEntry
	return min(d, cloneTimeout)
}

// copyClone does the copy itself: the staging directory made, the tree copied with progress
// Events (its top directory with the claim's owner and mode, at most the claim's request), and
// the copy marked complete (<staging>.done), for the Provision that returns its PV to rename.
func (c *Cloner) copyClone(ctx context.Context, job *cloneJob, from, to export.FS, staging string) (copied export.Copied, err error) {
	v := job.v
	defer func() {
		// A copy ended by its own bounds (the tenant's tree too deep, too big, growing, slower
		// than it justifies) is the tree's failure, not a server's: the gate does not count it. A
		// call that got no answer still counts.
		if errors.Is(err, export.ErrTooDeep) || errors.Is(err, export.ErrTooBig) || errors.Is(err, export.ErrTooManyEntries) || errors.Is(err, errOvertime) {
			err = export.Answered(err)
		}
	}()
	total, err := from.Usage(ctx, job.source.loc.Dir, nil)
	if err != nil {
		return copied, fmt.Errorf("measure the source %s: %w", job.source, err)
	}
	if err := to.MkdirAll(ctx, path.Dir(staging), export.DirAttrs{Mode: stagingMode, UID: v.ParentAttrs.UID, GID: v.ParentAttrs.GID}); err != nil {
		return copied, fmt.Errorf("create %s on %s:%s: %w%s", path.Dir(staging), v.Server, v.Share, err, volume.Hint(err))
	}
	c.cfg.Recorder.Eventf(v.Claim, v1.EventTypeNormal, ReasonCloneStarted, "copying %s: %d entries, %s used", job.source, total.Inodes, bytesText(total.Bytes))
	progress := &export.CopyProgress{}
	stop := c.reportClone(ctx, job, progress, total)
	request := v.Claim.Spec.Resources.Requests[v1.ResourceStorage]
	// Bounded by the request and by the tree's size when measured (plus what a live volume may
	// add meanwhile), so that a tree grown without end is never copied without end; and in time
	// by what the measured tree justifies.
	maxEntries := 2*total.Inodes + 10000
	limit := copyTimeout(total)
	copyCtx, cancel := context.WithTimeout(ctx, limit)
	err = export.CopyTree(copyCtx, from.Tree(), job.source.loc.Dir, to.Tree(), staging, export.CopyOptions{Progress: progress, Top: &v.Attrs,
		MaxBytes: uint64(max(request.Value(), 0)), MaxEntries: maxEntries})
	overtime := copyCtx.Err() != nil && ctx.Err() == nil
	cancel()
	stop()
	copied = progress.Snapshot()
	if overtime {
		return copied, fmt.Errorf("copy %s: %w: it took longer than the %s its source's %d entries and %s used justify, after %s (files that read as far more than they use, such as sparse ones, are read in full); it starts again later", job.source, errOvertime, limit.Round(time.Second), total.Inodes, bytesText(total.Bytes), copiedText(copied))
	}
	if errors.Is(err, export.ErrTooManyEntries) {
		return copied, fmt.Errorf("copy %s: its tree grew past %d entries while it was copied (it had %d); stop what writes to it: %w", job.source, maxEntries, total.Inodes, err)
	}
	if errors.Is(err, export.ErrTooBig) {
		return copied, fmt.Errorf("copy %s: its files hold more than the %s this claim requests (hard links and holes count as what they read as); request more: %w", job.source, request.String(), err)
	}
	if errors.Is(err, export.ErrTooDeep) {
		return copied, fmt.Errorf("copy %s: its tree is deeper than a clone copies (see the README's clone limits); flatten it: %w", job.source, err)
	}
	if err != nil {
		return copied, fmt.Errorf("copy %s after %s: %w", job.source, copiedText(copied), err)
	}
	if err := to.Rename(ctx, staging, staging+doneSuffix); err != nil {
		return copied, fmt.Errorf("mark the copy %s complete: %w", staging, err)
	}
	return copied, nil
}

// claimGone reports whether v's claim was deleted (or replaced by another of its name); an API
// server that cannot say is taken as no.
func (c *Cloner) claimGone(ctx context.Context, v volume.Volume) bool {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	claim, err := c.cfg.Claims.Claim(ctx, v.Claim.Namespace, v.Claim.Name)
	return apierrors.IsNotFound(err) || err == nil && (claim.UID != v.Claim.UID || claim.DeletionTimestamp != nil)
}

// reportClone sends CloneProgress Events (the interval doubling from CloneProgressInterval) and
// updates the metrics, and stops the job when its claim is gone. stop ends it.
func (c *Cloner) reportClone(ctx context.Context, job *cloneJob, progress *export.CopyProgress, total export.Usage) (stop func()) {
	v := job.v
	done := make(chan struct{})
	finished := make(chan struct{})
	var reported uint64
	report := func() {
		n := progress.Snapshot()
		c.observeCloneBytes(v.Server, n.Bytes-reported)
		reported = n.Bytes
	}
	go func() {
		defer close(finished)
		defer report()
		const metricsEvery = 5 * time.Second
		tick := time.NewTicker(min(metricsEvery, CloneProgressInterval))
		defer tick.Stop()
		interval := CloneProgressInterval
		next := time.Now().Add(interval)
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			report()
			if time.Now().Before(next) {
				continue
			}
			interval = min(2*interval, maxProgressInterval)
			next = time.Now().Add(interval)
			n := progress.Snapshot()
			c.cfg.Recorder.Eventf(v.Claim, v1.EventTypeNormal, ReasonCloneProgress, "copied %d of %d entries (%s of file content; the source uses %s)",
				n.Files+n.Dirs+n.Symlinks+n.Skipped, total.Inodes, bytesText(n.Bytes), bytesText(total.Bytes))
			if c.claimGone(ctx, v) {
				klog.FromContext(ctx).Info("claim deleted during its clone; stopping the copy", "pvc", klog.KObj(v.Claim))
				job.claimGone.Store(true)
				job.cancel()
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}

func copiedText(c export.Copied) string {
	return fmt.Sprintf("%d files, %d directories, %d symlinks, %s", c.Files, c.Dirs, c.Symlinks, bytesText(c.Bytes))
}

func skippedText(c export.Copied) string {
	if c.Skipped == 0 {
		return ""
	}
	return fmt.Sprintf("; %d devices, FIFOs or sockets were not copied", c.Skipped)
}

func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func rateText(bytes uint64, took time.Duration) string {
	if took <= 0 {
		return "-"
	}
	return bytesText(uint64(float64(bytes)/took.Seconds())) + "/s"
}

func (c *Cloner) observeClones(delta int) {
	if c.cfg.Observe != nil {
		c.cfg.Observe.ClonesRunning(delta)
	}
}

func (c *Cloner) observeCloneBytes(server string, n uint64) {
	if c.cfg.Observe != nil && n > 0 {
		c.cfg.Observe.CloneCopied(server, n)
	}
}

func (c *Cloner) observeCloneEnd(took time.Duration, err error) {
	if c.cfg.Observe != nil {
		c.cfg.Observe.CloneEnded(took, err)
	}
}

// stagingRoot is this install's directory in StagingDir, named by a hash of the provisioner's name
// and its namespace's UID: the clone sweep of another install, in this cluster or in another one
// sharing the export, never sees (and removes) this one's copies in progress.
func (c *Cloner) stagingRoot(ctx context.Context) (string, error) {
	c.jobs.mu.Lock()
	root := c.jobs.root
	c.jobs.mu.Unlock()
	if root != "" {
		return root, nil
	}
	uid := ""
	if c.cfg.Namespace != "" && c.cfg.Namespaces != nil {
		ctx, cancel := context.WithTimeout(ctx, apiTimeout)
		defer cancel()
		var err error
		if uid, err = c.cfg.Namespaces.NamespaceUID(ctx, c.cfg.Namespace); err != nil {
			return "", fmt.Errorf("read the UID of the provisioner's namespace %s: %w", c.cfg.Namespace, err)
		}
	}
	sum := sha256.Sum256([]byte(c.cfg.Name + "\x00" + uid))
	c.jobs.mu.Lock()
	defer c.jobs.mu.Unlock()
	c.jobs.root = path.Join(volume.StagingDir, hex.EncodeToString(sum[:6]))
	return c.jobs.root, nil
}
