package provisioner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/provisioner/internal/export"
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

// CloneProgressInterval is how often a running clone reports on its claim.
var CloneProgressInterval = 15 * time.Second

// cloneJob is one claim's copy, running in the background: Provision starts it and returns at
// once; the claim comes back to Provision when the job annotates it at its end.
type cloneJob struct {
	pv     string
	source *cloneSource
	cancel context.CancelFunc
	done   chan struct{}
	err    error // once done
}

// cloneJobs are the running and finished copies, by claim UID.
type cloneJobs struct {
	mu    sync.Mutex
	jobs  map[types.UID]*cloneJob
	slots chan struct{} // copies running at once
	root  string        // stagingRoot, once known
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

// staging reports whether a job copies into the staging directory of PV pv.
func (c *cloneJobs) staging(pv string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, j := range c.jobs {
		if j.pv == pv {
			return true
		}
	}
	return false
}

// sourcing reports whether a running job copies the claim namespace/name.
func (c *cloneJobs) sourcing(namespace, name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, j := range c.jobs {
		select {
		case <-j.done:
			continue
		default:
		}
		if j.source.claim.Namespace == namespace && j.source.claim.Name == name {
			return true
		}
	}
	return false
}

// errCloneRunning tells the library to leave the claim until its copy ends (no Event, no retry).
var errCloneRunning = &controller.IgnoredError{Reason: "its clone is being copied"}

// provisionClone fills v's directory with a copy of src. The first call protects the source and
// starts the copy; while it runs, calls return at once; once it has been renamed into place the
// PV is returned. A failed copy is the error of one call (retried by the library with backoff),
// and the next call starts again from nothing.
func (p *Provisioner) provisionClone(ctx context.Context, opts controller.ProvisionOptions, v claimVolume, class ClassOptions) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	claim := v.claim
	_, _, sourceName, _ := dataSourceOf(claim)
	if p.cfg.Claims == nil {
		return nil, controller.ProvisioningFinished, refusePlacement("cannot clone claim %s: this provisioner runs without access to claims", sourceName)
	}
	if !v.own {
		return nil, controller.ProvisioningFinished, refusePlacement("cannot clone claim %s: the class's pathPattern gives claims directories they may share; a clone needs a directory of its own (leave pathPattern unset, or include ${.PVC.pvname} in it)", sourceName)
	}
	if job := p.clones.get(claim.UID); job != nil {
		select {
		case <-job.done:
		default:
			return nil, controller.ProvisioningInBackground, errCloneRunning
		}
		p.clones.forget(claim.UID, job)
		if job.err != nil {
			return nil, controller.ProvisioningInBackground, job.err
		}
	}
	// The copy is renamed into place as its last step, at a path only this claim has: a
	// directory there is this claim's finished copy (a retry after the PV was not saved).
	var exists bool
	err := p.onExport(ctx, v.server, v.share, p.cfg.Timeout, func(ctx context.Context, fsys export.FS) error {
		_, err := fsys.Stat(ctx, v.dir)
		exists = err == nil
		if errors.Is(err, export.ErrNotExist) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, controller.ProvisioningNoChange, fmt.Errorf("look for the clone's directory %s on %s:%s: %w", v.dir, v.server, v.share, err)
	}
	if exists {
		if !p.clones.sourcing(claim.Namespace, sourceName) {
			if err := p.cfg.Claims.Unprotect(ctx, claim.Namespace, sourceName); err != nil {
				return nil, controller.ProvisioningInBackground, fmt.Errorf("release the source claim %s: %w", sourceName, err)
			}
		}
		return newVolume(opts, v.server, v.share, v.dir, class.OnDelete), controller.ProvisioningFinished, nil
	}
	src, err := p.cloneSourceOf(ctx, claim)
	if err != nil {
		var refused *placementError
		if errors.As(err, &refused) {
			return nil, controller.ProvisioningFinished, err
		}
		return nil, controller.ProvisioningInBackground, err
	}
	if err := p.cfg.Claims.Protect(ctx, src.claim.Namespace, src.claim.Name, src.claim.UID); err != nil {
		return nil, controller.ProvisioningNoChange, fmt.Errorf("protect the source claim %s from deletion during the copy: %w", src.claim.Name, err)
	}
	p.startClone(v, src)
	return nil, controller.ProvisioningInBackground, errCloneRunning
}

func (p *Provisioner) startClone(v claimVolume, src *cloneSource) {
	ctx, cancel := context.WithCancel(p.cfg.Background)
	job := &cloneJob{pv: v.pv, source: src, cancel: cancel, done: make(chan struct{})}
	p.clones.mu.Lock()
	p.clones.jobs[v.claim.UID] = job
	p.clones.mu.Unlock()
	go func() {
		defer cancel()
		job.err = p.runClone(ctx, job, v)
		close(job.done)
		status := "copied"
		if job.err != nil {
			status = "failed"
		}
		// Bring the claim back to the controller, which finishes it (or reports the failure).
		if err := p.cfg.Claims.Annotate(context.WithoutCancel(ctx), v.claim.Namespace, v.claim.Name, v.claim.UID, AnnCloneStatus, status); err != nil {
			klog.FromContext(ctx).Error(err, "clone ended, but its claim could not be updated; the informer's resync finishes it", "pvc", klog.KObj(v.claim))
		}
	}()
}

// runClone copies src into the staging directory of v, then renames it into place. Whatever
// happens, the staging directory is gone and the source released when it returns.
func (p *Provisioner) runClone(ctx context.Context, job *cloneJob, v claimVolume) (err error) {
	logger := klog.FromContext(ctx).WithValues("pvc", klog.KObj(v.claim), "source", job.source.String())
	select {
	case p.clones.slots <- struct{}{}:
		defer func() { <-p.clones.slots }()
	case <-ctx.Done():
		return ctx.Err()
	}
	root, err := p.stagingRoot(ctx)
	if err != nil {
		return err
	}
	staging := path.Join(root, v.pv)
	start := time.Now()
	p.observeClones(1)
	defer func() {
		p.observeClones(-1)
		p.observeCloneEnd(time.Since(start), err)
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.RemoveTimeout)
		defer cancel()
		if err != nil {
			rerr := p.onExport(cleanup, v.server, v.share, p.cfg.RemoveTimeout, func(ctx context.Context, fsys export.FS) error {
				return fsys.RemoveAll(ctx, staging, nil)
			})
			if rerr != nil {
				logger.Error(rerr, "remove a failed clone's staging directory; the clone sweep retries", "staging", staging)
			}
			p.cfg.Recorder.Eventf(v.claim, v1.EventTypeWarning, ReasonCloneFailed, "copy of %s failed after %s and was removed; it starts again from nothing: %v", job.source, time.Since(start).Round(time.Second), err)
		}
		if uerr := p.cfg.Claims.Unprotect(cleanup, job.source.claim.Namespace, job.source.claim.Name); uerr != nil {
			logger.Error(uerr, "release the source claim; the clone sweep retries")
		}
	}()
	var copied export.Copied
	err = p.onExport(ctx, job.source.loc.server, job.source.loc.share, cloneTimeout, func(ctx context.Context, from export.FS) error {
		return p.onExport(ctx, v.server, v.share, cloneTimeout, func(ctx context.Context, to export.FS) error {
			var err error
			copied, err = p.copyClone(ctx, job, v, from, to, staging)
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

// copyClone does the copy itself: the staging directory cleared of an earlier attempt, the tree
// copied with progress Events (its top directory with the claim's owner and mode), and the rename.
func (p *Provisioner) copyClone(ctx context.Context, job *cloneJob, v claimVolume, from, to export.FS, staging string) (export.Copied, error) {
	total, err := from.Usage(ctx, job.source.loc.dir, nil)
	if err != nil {
		return export.Copied{}, fmt.Errorf("measure the source %s: %w", job.source, err)
	}
	if err := to.MkdirAll(ctx, path.Dir(staging), export.DirAttrs{Mode: stagingMode, UID: v.parentAttrs.UID, GID: v.parentAttrs.GID}); err != nil {
		return export.Copied{}, fmt.Errorf("create %s on %s:%s: %w%s", path.Dir(staging), v.server, v.share, err, hint(err))
	}
	if err := to.RemoveAll(ctx, staging, nil); err != nil {
		return export.Copied{}, fmt.Errorf("remove an earlier attempt's %s: %w", staging, err)
	}
	p.cfg.Recorder.Eventf(v.claim, v1.EventTypeNormal, ReasonCloneStarted, "copying %s: %d entries, %s used", job.source, total.Inodes, bytesText(total.Bytes))
	progress := &export.CopyProgress{}
	stop := p.reportClone(ctx, job, v, progress, total)
	err = export.CopyTree(ctx, from.Tree(), job.source.loc.dir, to.Tree(), staging, export.CopyOptions{Progress: progress, Top: &v.attrs})
	stop()
	copied := progress.Snapshot()
	if err != nil {
		err = fmt.Errorf("copy %s after %s: %w", job.source, copiedText(copied), err)
		if copied.Dirs > 0 {
			err = answeredError{err} // both servers answered calls: a failure of the copy, not of a server
		}
		return copied, err
	}
	if parent := path.Dir(v.dir); parent != "." {
		if err := to.MkdirAll(ctx, parent, v.parentAttrs); err != nil {
			return copied, fmt.Errorf("create the parent directories of %s: %w%s", v.dir, err, hint(err))
		}
	}
	if err := to.Rename(ctx, staging, v.dir); err != nil {
		return copied, fmt.Errorf("move the copy into place at %s: %w", v.dir, err)
	}
	return copied, nil
}

// reportClone sends a CloneProgress Event and updates the metrics every CloneProgressInterval,
// and cancels the job when its claim is gone. stop ends it.
func (p *Provisioner) reportClone(ctx context.Context, job *cloneJob, v claimVolume, progress *export.CopyProgress, total export.Usage) (stop func()) {
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
		t := time.NewTicker(CloneProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			report()
			n := progress.Snapshot()
			p.cfg.Recorder.Eventf(v.claim, v1.EventTypeNormal, ReasonCloneProgress, "copied %d of %d entries (%s of file content; the source uses %s)",
				n.Files+n.Dirs+n.Symlinks+n.Skipped, total.Inodes, bytesText(n.Bytes), bytesText(total.Bytes))
			claim, err := p.cfg.Claims.Claim(ctx, v.claim.Namespace, v.claim.Name)
			if apierrors.IsNotFound(err) || err == nil && (claim.UID != v.claim.UID || claim.DeletionTimestamp != nil) {
				klog.FromContext(ctx).Info("claim deleted during its clone; stopping the copy", "pvc", klog.KObj(v.claim))
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
	defer p.clones.mu.Unlock()
	if p.clones.root != "" {
		return p.clones.root, nil
	}
	uid := ""
	if p.cfg.Namespace != "" && p.cfg.Namespaces != nil {
		var err error
		if uid, err = p.cfg.Namespaces.NamespaceUID(ctx, p.cfg.Namespace); err != nil {
			return "", fmt.Errorf("read the UID of the provisioner's namespace %s: %w", p.cfg.Namespace, err)
		}
	}
	sum := sha256.Sum256([]byte(p.cfg.Name + "\x00" + uid))
	p.clones.root = path.Join(StagingDir, hex.EncodeToString(sum[:6]))
	return p.clones.root, nil
}
