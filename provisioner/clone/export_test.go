package clone

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// What the tests of package clone_test look at inside.

const DoneSuffix = doneSuffix

func (c *Cloner) StagingRoot(ctx context.Context) (string, error) { return c.stagingRoot(ctx) }

func (c *Cloner) Job(uid types.UID) *cloneJob { return c.jobs.get(uid) }

// Forget drops the job of uid, as a restart does.
func (c *Cloner) Forget(uid types.UID) { c.jobs.forget(uid, c.jobs.get(uid)) }

func (c *Cloner) ReleaseSource(ctx context.Context, namespace, name string) error {
	return c.releaseSource(ctx, namespace, name, nil, "")
}

// AddRunning registers a job of claim copying src that runs until finish is called.
func (c *Cloner) AddRunning(uid types.UID, claim, src *v1.PersistentVolumeClaim) (finish func()) {
	job := &cloneJob{v: volume.Volume{Claim: claim}, source: &cloneSource{claim: src}}
	job.done, job.end = context.WithCancel(context.Background())
	c.jobs.mu.Lock()
	c.jobs.jobs[uid] = job
	c.jobs.mu.Unlock()
	return job.end
}

func (j *cloneJob) Done() <-chan struct{} { return j.done.Done() }
func (j *cloneJob) Attempt() string       { return j.attempt }
func (j *cloneJob) Err() error            { return j.err }

// SkipBackoff lets the next attempt after a failure start at once.
func (j *cloneJob) SkipBackoff() { j.retryAt = j.retryAt.AddDate(-1, 0, 0) }

// SetCopyTime sets what a copy's source justifies, returning how to restore it.
func SetCopyTime(base, perEntry time.Duration, rate float64) (restore func()) {
	b, e, r := copyTimeBase, copyTimePerEntry, copyMinRate
	copyTimeBase, copyTimePerEntry, copyMinRate = base, perEntry, rate
	return func() { copyTimeBase, copyTimePerEntry, copyMinRate = b, e, r }
}
