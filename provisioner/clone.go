package provisioner

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
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// Event reasons of a clone, on the claim being filled.
const (
	ReasonCloneStarted  = "CloneStarted"
	ReasonCloneProgress = "CloneProgress"
	ReasonCloneFinished = "CloneFinished"
	ReasonCloneFailed   = "CloneFailed"
)

// StagingDir is the directory at the root of every export where clones are copied before they
// are renamed into place: <StagingDir>/<install>/<pv name>, where <install> is this provisioner's
// own (stagingRoot). No claim's directory is ever in it.
const StagingDir = ".nfsp-clones"

// stagingMode lets each copied object be made by its own owner (root_squash); no tenant's mount
// reaches the export root.
const stagingMode export.Mode = 0o1777

// CloneProgressInterval is the first interval between a running clone's progress Events; it
// doubles up to maxProgressInterval, so that a long copy stays within the Event rate client-go
// allows per object and its CloneFinished Event is never the one dropped.
var CloneProgressInterval = 15 * time.Second

const maxProgressInterval = 10 * time.Minute

// cloneJob is one attempt at one claim's copy, running in the background: Provision starts it
// and returns at once; the claim comes back to Provision when the job annotates it at its end.
type cloneJob struct {
	v         claimVolume
	source    *cloneSource
	attempt   string // names this attempt's staging directory and its end's annotation
	cancel    context.CancelFunc
	claimGone atomic.Bool // the claim was deleted: stopped, and cleaned up
	done      chan struct{}
	err       error     // once done
	failures  int       // attempts that failed in a row, this one included when err != nil
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
	return &cloneJobs{jobs: map[types.UID]*cloneJob{}, slots: make(chan struct{}, max(parallel, 1))}
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

func (j *cloneJob) running() bool {
	select {
	case <-j.done:
		return false
	default:
		return true
	}
}

// stagedBy reports whether a running job copies into the staging directory name.
func (c *cloneJobs) stagedBy(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, j := range c.jobs {
		if j.running() && j.v.pv+"."+j.attempt == name {
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

// provisionClone fills v's directory with a copy of its data source. The first call protects the
// source and starts the copy; while it runs, calls return at once; once it has been renamed into
// place the PV is returned. A failed copy is the error of the calls until its backoff ends (the
// library retries them with its own), and the next call after it starts again from nothing.
func (p *Provisioner) provisionClone(ctx context.Context, opts controller.ProvisionOptions, v claimVolume, class ClassOptions) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	ctx, cancel := context.WithTimeout(ctx, cloneCallTimeout) // never waits for the copy itself
	defer cancel()
	claim := v.claim
	_, _, sourceName, _ := dataSourceOf(claim)
	if p.cfg.Claims == nil {
		return nil, controller.ProvisioningFinished, refusePlacement("cannot clone claim %s: this provisioner runs without access to claims", sourceName)
	}
	if !v.own {
		return nil, controller.ProvisioningFinished, refusePlacement("cannot clone claim %s: the class's pathPattern gives claims directories they may share; a clone needs a directory of its own (leave pathPattern unset, or include ${.PVC.pvname} in it)", sourceName)
	}
	failures := 0
	if job := p.clones.get(claim.UID); job != nil {
		if job.running() {
			return nil, controller.ProvisioningInBackground, errCloneRunning
		}
		if job.err != nil && time.Now().Before(job.retryAt) {
			return nil, controller.ProvisioningInBackground, fmt.Errorf("%w; the copy starts again in %s", job.err, time.Until(job.retryAt).Round(time.Second))
		}
		p.clones.forget(claim.UID, job)
		failures = job.failures
	}
	// A finished copy waits in staging (<pv>.<attempt>.done) and is renamed into place here, in
	// the call that returns its PV, at a path only this claim has: a directory there is this
	// claim's copy, renamed by a call whose PV was not saved. So a copy is in the claim's place
	// only when its PV is made, and every copy that never gets there is the staging sweep's.
	placed, err := p.placeFinishedCopy(ctx, v)
	if err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	if placed {
		if err := p.releaseSource(ctx, claim.Namespace, sourceName, nil, claim.UID); err != nil {
			return nil, controller.ProvisioningInBackground, err
		}
		pv, err := p.volumeFor(ctx, opts, v, class)
		if err != nil {
			return nil, controller.ProvisioningInBackground, err
		}
		return pv, controller.ProvisioningFinished, nil
	}
	src, err := p.cloneSourceOf(ctx, claim)
	if err != nil {
		var refused *placementError
		if errors.As(err, &refused) {
			return nil, controller.ProvisioningFinished, err
		}
		return nil, controller.ProvisioningInBackground, err
	}
	if class.Capacity.Enabled {
		err := p.onExport(ctx, v.server, v.share, p.cfg.Timeout, func(ctx context.Context, fsys export.FS) error {
			return checkCapacity(ctx, fsys, v, class.Capacity, claim.Spec.Resources.Requests[v1.ResourceStorage])
		})
		if err != nil {
			return nil, controller.ProvisioningInBackground, err
		}
	}
	// Protect and register under the source lock: a release (the sweep's, another job's) sees
	// either no protection to keep or this job.
	p.clones.sourceMu.Lock()
	defer p.clones.sourceMu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	if err := p.cfg.Claims.Protect(pctx, src.claim.Namespace, src.claim.Name, src.claim.UID); err != nil {
		return nil, controller.ProvisioningNoChange, fmt.Errorf("protect the source claim %s from deletion during the copy: %w", src.claim.Name, err)
	}
	p.startClone(v, src, failures)
	return nil, controller.ProvisioningInBackground, errCloneRunning
}

// placeFinishedCopy renames this claim's finished copy from staging into its place, and reports
// whether the claim's directory is there (renamed now or by an earlier call).
func (p *Provisioner) placeFinishedCopy(ctx context.Context, v claimVolume) (placed bool, err error) {
	root, err := p.stagingRoot(ctx)
	if err != nil {
		return false, err
	}
	err = p.onExport(ctx, v.server, v.share, p.cfg.Timeout, func(ctx context.Context, fsys export.FS) error {
		if _, err := fsys.Stat(ctx, v.dir); err == nil || !errors.Is(err, export.ErrNotExist) {
			placed = err == nil
			return err
		}
		done, err := finishedCopy(ctx, fsys, root, v.pv)
		if err != nil || done == "" {
			return err
		}
		if parent := path.Dir(v.dir); parent != "." {
			if err := fsys.MkdirAll(ctx, parent, v.parentAttrs); err != nil {
				return fmt.Errorf("create the parent directories of %s: %w%s", v.dir, err, hint(err))
			}
		}
		if err := fsys.Rename(ctx, done, v.dir); err != nil {
			return fmt.Errorf("move the copy %s into place at %s: %w", done, v.dir, err)
		}
		placed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("the clone's directory %s on %s:%s: %w", v.dir, v.server, v.share, err)
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
func (p *Provisioner) releaseSource(ctx context.Context, namespace, name string, except *cloneJob, exceptClaim types.UID) error {
	p.clones.sourceMu.Lock()
	defer p.clones.sourceMu.Unlock()
	if p.clones.sourcing(namespace, name, except) {
		return nil
	}
	claims, err := p.cfg.Claims.Cached()
	if err != nil {
		return err
	}
	for _, c := range claims {
		if c.UID == exceptClaim {
			continue
		}
		if _, kind, n, ns := dataSourceOf(c); kind == "PersistentVolumeClaim" && ns == namespace && c.Namespace == namespace && n == name && c.Spec.VolumeName == "" && c.DeletionTimestamp == nil {
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	if err := p.cfg.Claims.Unprotect(ctx, namespace, name); err != nil {
		return fmt.Errorf("release the source claim %s: %w", name, err)
	}
	return nil
}

// cloneCallTimeout bounds one Provision of a clone: a few API and NFS calls.
const cloneCallTimeout = 2 * time.Minute

// apiTimeout bounds each API call a clone makes outside the library's.
const apiTimeout = 30 * time.Second

func (p *Provisioner) startClone(v claimVolume, src *cloneSource, failures int) {
	ctx, cancel := context.WithCancel(p.cfg.Background)
	job := &cloneJob{v: v, source: src, attempt: newAttempt(), cancel: cancel, done: make(chan struct{}), failures: failures}
	p.clones.mu.Lock()
	p.clones.jobs[v.claim.UID] = job
	p.clones.mu.Unlock()
	go func() {
		defer cancel()
		job.err = p.runClone(ctx, job)
		status := "copied"
		if job.err != nil {
			job.failures++
			job.retryAt = time.Now().Add(min(cloneRetryMax, cloneRetryFirst<<min(job.failures-1, 10)))
			status = "failed"
		}
		close(job.done)
		if ctx.Err() != nil && !job.claimGone.Load() {
			return // the provisioner stops: the next leader starts the copy again
		}
		// Bring the claim back to the controller, which finishes it (or reports the failure). The
		// attempt makes each end a change, so that a second failure is one too.
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
		defer acancel()
		if err := p.cfg.Claims.Annotate(actx, v.claim.Namespace, v.claim.Name, v.claim.UID, AnnCloneStatus, status+" "+job.attempt); err != nil {
			klog.FromContext(ctx).Error(err, "clone ended, but its claim could not be updated; the informer's resync finishes it", "pvc", klog.KObj(v.claim))
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
func (p *Provisioner) runClone(ctx context.Context, job *cloneJob) (err error) {
	v := job.v
	logger := klog.FromContext(ctx).WithValues("pvc", klog.KObj(v.claim), "source", job.source.String())
	// One copy per namespace at a time, then one of the install's slots: a tenant with many
	// clones does not keep another's waiting behind all of them.
	own := p.clones.namespaceSlot(v.claim.Namespace)
	for _, slots := range []chan struct{}{own, p.clones.slots} {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	root, err := p.stagingRoot(ctx)
	if err != nil {
		return err
	}
	staging := path.Join(root, v.pv+"."+job.attempt)
	start := time.Now()
	p.observeClones(1)
	defer func() {
		p.observeClones(-1)
		p.observeCloneEnd(time.Since(start), err)
		if ctx.Err() != nil && !job.claimGone.Load() {
			logger.Info("clone stopped with the provisioner; the next leader starts it again", "staging", staging)
			return
		}
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.RemoveTimeout)
		defer cancel()
		if err != nil {
			rerr := p.onExport(cleanup, v.server, v.share, p.cfg.RemoveTimeout, func(ctx context.Context, fsys export.FS) error {
				return fsys.RemoveAll(ctx, staging, nil)
			})
			removed := "it was removed"
			if rerr != nil {
				logger.Error(rerr, "remove a failed clone's staging directory; the clone sweep retries", "staging", staging)
				removed = "the clone sweep removes what it copied"
			}
			if !job.claimGone.Load() {
				p.cfg.Recorder.Eventf(v.claim, v1.EventTypeWarning, ReasonCloneFailed, "copy of %s failed after %s (%s; it starts again from nothing): %v", job.source, time.Since(start).Round(time.Second), removed, err)
			}
		}
		if uerr := p.releaseSource(cleanup, job.source.claim.Namespace, job.source.claim.Name, job, v.claim.UID); uerr != nil {
			logger.Error(uerr, "release the source claim; the clone sweep retries")
		}
	}()
	var copied export.Copied
	err = p.onExport(ctx, job.source.loc.server, job.source.loc.share, cloneTimeout, func(ctx context.Context, from export.FS) error {
		return p.onExport(ctx, v.server, v.share, cloneTimeout, func(ctx context.Context, to export.FS) error {
			var err error
			copied, err = p.copyClone(ctx, job, from, to, staging)
			return err
		})
	})
	if err != nil {
		return err
	}
	took := time.Since(start)
	p.cfg.Recorder.Eventf(v.claim, v1.EventTypeNormal, ReasonCloneFinished, "copied %s: %s in %s (%s)%s", job.source, copiedText(copied), took.Round(time.Second), rateText(copied.Bytes, took), skippedText(copied))
	logger.Info("clone copied", "files", copied.Files, "bytes", copied.Bytes, "took", took)
	return nil
}

// cloneTimeout bounds one clone: long enough for terabytes at a slow pace, short enough that a
// copy that stopped moving ends.
const cloneTimeout = 24 * time.Hour

// copyClone does the copy itself: the staging directory made, the tree copied with progress
// Events (its top directory with the claim's owner and mode, at most the claim's request), and
// the copy marked complete (<staging>.done), for the Provision that returns its PV to rename.
func (p *Provisioner) copyClone(ctx context.Context, job *cloneJob, from, to export.FS, staging string) (copied export.Copied, err error) {
	v := job.v
	defer func() {
		if err != nil && copied.Dirs > 0 && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			err = answeredError{err} // both servers answered: a failure of the copy, not of a server
		}
	}()
	total, err := from.Usage(ctx, job.source.loc.dir, nil)
	if err != nil {
		return copied, answeredError{fmt.Errorf("measure the source %s: %w", job.source, err)}
	}
	if err := to.MkdirAll(ctx, path.Dir(staging), export.DirAttrs{Mode: stagingMode, UID: v.parentAttrs.UID, GID: v.parentAttrs.GID}); err != nil {
		return copied, fmt.Errorf("create %s on %s:%s: %w%s", path.Dir(staging), v.server, v.share, err, hint(err))
	}
	p.cfg.Recorder.Eventf(v.claim, v1.EventTypeNormal, ReasonCloneStarted, "copying %s: %d entries, %s used", job.source, total.Inodes, bytesText(total.Bytes))
	progress := &export.CopyProgress{}
	stop := p.reportClone(ctx, job, progress, total)
	request := v.claim.Spec.Resources.Requests[v1.ResourceStorage]
	// Bounded by the request and by the tree's size when measured (plus what a live volume may
	// add meanwhile), so that a tree grown without end is never copied without end.
	maxEntries := 2*total.Inodes + 10000
	err = export.CopyTree(ctx, from.Tree(), job.source.loc.dir, to.Tree(), staging, export.CopyOptions{Progress: progress, Top: &v.attrs,
		MaxBytes: uint64(max(request.Value(), 0)), MaxEntries: maxEntries})
	stop()
	copied = progress.Snapshot()
	if errors.Is(err, export.ErrTooManyEntries) {
		return copied, fmt.Errorf("copy %s: its tree grew past %d entries while it was copied (it had %d); stop what writes to it", job.source, maxEntries, total.Inodes)
	}
	if errors.Is(err, export.ErrTooBig) {
		return copied, fmt.Errorf("copy %s: its files hold more than the %s this claim requests (hard links and holes count as what they read as); request more", job.source, request.String())
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
func (p *Provisioner) claimGone(ctx context.Context, v claimVolume) bool {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	claim, err := p.cfg.Claims.Claim(ctx, v.claim.Namespace, v.claim.Name)
	return apierrors.IsNotFound(err) || err == nil && (claim.UID != v.claim.UID || claim.DeletionTimestamp != nil)
}

// reportClone sends CloneProgress Events (the interval doubling from CloneProgressInterval) and
// updates the metrics, and stops the job when its claim is gone. stop ends it.
func (p *Provisioner) reportClone(ctx context.Context, job *cloneJob, progress *export.CopyProgress, total export.Usage) (stop func()) {
	v := job.v
	done := make(chan struct{})
	finished := make(chan struct{})
	var reported uint64
	report := func() {
		n := progress.Snapshot()
		p.observeCloneBytes(v.server, n.Bytes-reported)
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
			p.cfg.Recorder.Eventf(v.claim, v1.EventTypeNormal, ReasonCloneProgress, "copied %d of %d entries (%s of file content; the source uses %s)",
				n.Files+n.Dirs+n.Symlinks+n.Skipped, total.Inodes, bytesText(n.Bytes), bytesText(total.Bytes))
			if p.claimGone(ctx, v) {
				klog.FromContext(ctx).Info("claim deleted during its clone; stopping the copy", "pvc", klog.KObj(v.claim))
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

func (p *Provisioner) observeClones(delta int) {
	if p.cfg.Observe != nil {
		p.cfg.Observe.ClonesRunning(delta)
	}
}

func (p *Provisioner) observeCloneBytes(server string, n uint64) {
	if p.cfg.Observe != nil && n > 0 {
		p.cfg.Observe.CloneCopied(server, n)
	}
}

func (p *Provisioner) observeCloneEnd(took time.Duration, err error) {
	if p.cfg.Observe != nil {
		p.cfg.Observe.CloneEnded(took, err)
	}
}

// stagingRoot is this install's directory in StagingDir, named by a hash of the provisioner's name
// and its namespace's UID: the clone sweep of another install, in this cluster or in another one
// sharing the export, never sees (and removes) this one's copies in progress.
func (p *Provisioner) stagingRoot(ctx context.Context) (string, error) {
	p.clones.mu.Lock()
	root := p.clones.root
	p.clones.mu.Unlock()
	if root != "" {
		return root, nil
	}
	uid := ""
	if p.cfg.Namespace != "" && p.cfg.Namespaces != nil {
		ctx, cancel := context.WithTimeout(ctx, apiTimeout)
		defer cancel()
		var err error
		if uid, err = p.cfg.Namespaces.NamespaceUID(ctx, p.cfg.Namespace); err != nil {
			return "", fmt.Errorf("read the UID of the provisioner's namespace %s: %w", p.cfg.Namespace, err)
		}
	}
	sum := sha256.Sum256([]byte(p.cfg.Name + "\x00" + uid))
	p.clones.mu.Lock()
	defer p.clones.mu.Unlock()
	p.clones.root = path.Join(StagingDir, hex.EncodeToString(sum[:6]))
	return p.clones.root, nil
}
