// Package usage measures exports and volumes: every export's capacity (FSSTAT or statfs) and
// every volume's usage (a paced walk of its tree), each interval, for the metrics, with a
// Warning on a claim whose volume outgrows its request; and the capacity check a class may ask
// for before a claim is provisioned. It calls volume and export, never the API server but for
// Events.
package usage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// ReasonUsageExceedsRequest is the Warning Event on a claim whose volume holds more than the
// claim requested.
const ReasonUsageExceedsRequest = "UsageExceedsRequest"

// VolumeUsage is one scanned volume, labelled as kubelet's volume stats are.
type VolumeUsage struct {
	Namespace, Claim, PV string
	Used                 export.Usage
	CapacityBytes        int64
}

// Observer is told what the monitor measured, for metrics.
type Observer interface {
	ExportCapacity(server, share string, c export.Capacity)
	// VolumeUsage gets every volume's usage after a scan (replacing the last scan's), how long
	// the scan took and how many volumes failed.
	VolumeUsage(volumes []VolumeUsage, took time.Duration, failed int)
}

// Config is what a Monitor needs.
type Config struct {
	Gate     *export.Gate
	Locator  *volume.Locator
	Volumes  volume.Index
	Observe  Observer
	Recorder record.EventRecorder
	// Timeout bounds one FSSTAT; WalkTimeout one volume's walk.
	Timeout, WalkTimeout time.Duration
	// CallsPerSecond is the budget of listing calls per second per server of the usage walk
	// (0: unlimited), so that a scan never starves provisioning on that server.
	CallsPerSecond float64
}

// Monitor reads, each interval, the capacity of every export in use and the usage of every
// volume this provisioner made. Run it while leading.
type Monitor struct {
	cfg         Config
	mu          sync.Mutex
	limiters    map[string]*rate.Limiter // canonical server → its budget
	overRequest map[string]bool          // PV names last seen above their request
}

// New returns a Monitor.
func New(cfg Config) *Monitor {
	return &Monitor{cfg: cfg, limiters: map[string]*rate.Limiter{}, overRequest: map[string]bool{}}
}

// Run reads capacities and scans usage every interval until ctx ends; interval <= 0, or no
// Observer, disables it.
func (m *Monitor) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 || m.cfg.Observe == nil {
		return
	}
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		m.ReadExports(ctx)
		m.Scan(ctx)
	}, interval)
}

// ReadExports reads the capacity of every export in use once.
func (m *Monitor) ReadExports(ctx context.Context) {
	for _, e := range m.cfg.Locator.InUse() {
		var c export.Capacity
		err := m.cfg.Gate.Do(ctx, e.Server, e.Share, m.cfg.Timeout, func(ctx context.Context, fsys export.FS) (err error) {
			c, err = fsys.Capacity(ctx)
			return err
		})
		if err != nil {
			klog.FromContext(ctx).V(2).Info("export capacity not read", "server", e.Server, "share", e.Share, "err", err)
			continue
		}
		m.cfg.Observe.ExportCapacity(e.Server, e.Share, c)
	}
}

// Scan walks every volume once and hands the results to the Observer.
func (m *Monitor) Scan(ctx context.Context) {
	if m.cfg.Volumes == nil || m.cfg.Observe == nil {
		return
	}
	start := time.Now()
	var results []VolumeUsage
	failed := 0
	seen := map[string]bool{}
	for _, pv := range m.cfg.Volumes.All() {
		if ctx.Err() != nil {
			return
		}
		if pv.Spec.NFS == nil || pv.Spec.ClaimRef == nil || pv.Annotations[volume.AnnProvisionedBy] != m.cfg.Locator.Name || pv.DeletionTimestamp != nil {
			continue
		}
		loc, err := m.cfg.Locator.Locate(pv)
		if err != nil {
			continue
		}
		seen[pv.Name] = true
		used, err := m.walk(ctx, loc)
		if err != nil {
			failed++
			klog.FromContext(ctx).V(2).Info("volume usage not read", "pv", pv.Name, "location", loc, "err", err)
			continue
		}
		capacity := pv.Spec.Capacity[v1.ResourceStorage]
		v := VolumeUsage{Namespace: pv.Spec.ClaimRef.Namespace, Claim: pv.Spec.ClaimRef.Name, PV: pv.Name, Used: used, CapacityBytes: capacity.Value()}
		results = append(results, v)
		m.warnOverRequest(pv, v, capacity.String())
	}
	m.forgetOthers(seen)
	m.cfg.Observe.VolumeUsage(results, time.Since(start), failed)
}

// walk measures one volume, paced by its server's budget. A walk the tenant's tree ended — too
// deep, or too big for the walk's own time while the server answered its listings — is the tree's
// failure, not the server's: it does not count against the gate, so one tenant's tree never turns
// the other tenants of that server away. A call that got no answer still counts.
func (m *Monitor) walk(ctx context.Context, loc volume.Location) (export.Usage, error) {
	limit := m.limiter(loc.Server)
	var listings atomic.Int64
	pace := func(ctx context.Context) error { // called before each listing
		listings.Add(1)
		if limit == nil {
			return nil
		}
		return limit.Wait(ctx)
	}
	var used export.Usage
	err := m.cfg.Gate.Do(export.WithVersion(ctx, loc.Version), loc.Server, loc.Share, m.cfg.WalkTimeout, func(ctx context.Context, fsys export.FS) (err error) {
		used, err = fsys.Usage(ctx, loc.Dir, pace)
		// The walk's own time ran out (not one call's) after a listing was answered (a second one
		// was asked for), or the tree was too deep.
		if errors.Is(err, export.ErrTooDeep) || ctx.Err() != nil && listings.Load() > 1 {
			err = export.Answered(err)
		}
		return err
	})
	return used, err
}

func (m *Monitor) limiter(server string) *rate.Limiter {
	if m.cfg.CallsPerSecond <= 0 {
		return nil
	}
	key := export.CanonicalServer(server)
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.limiters[key]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(m.cfg.CallsPerSecond), 1)
		m.limiters[key] = l
	}
	return l
}

// warnOverRequest records a Warning Event on the claim when its volume goes above the request:
// once per crossing, not every scan.
func (m *Monitor) warnOverRequest(pv *v1.PersistentVolume, v VolumeUsage, capacity string) {
	over := v.CapacityBytes > 0 && v.Used.Bytes > uint64(v.CapacityBytes)
	m.mu.Lock()
	was := m.overRequest[pv.Name]
	m.overRequest[pv.Name] = over
	m.mu.Unlock()
	if !over || was || m.cfg.Recorder == nil {
		return
	}
	claim := &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: v.Namespace, Name: v.Claim, UID: pv.Spec.ClaimRef.UID}
	m.cfg.Recorder.Event(claim, v1.EventTypeWarning, ReasonUsageExceedsRequest,
		fmt.Sprintf("volume %s uses %d bytes in %d files and directories, more than the %s requested; NFS does not enforce the size, so nothing stops it growing: clean up or ask for more", pv.Name, v.Used.Bytes, v.Used.Inodes, capacity))
}

// forgetOthers drops what was remembered of volumes the last scan did not see (deleted), so that
// the memory follows the volumes there are, not every volume there ever was.
func (m *Monitor) forgetOthers(seen map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.overRequest {
		if !seen[name] {
			delete(m.overRequest, name)
		}
	}
}

// CheckCapacity refuses a request v's export cannot hold (one FSSTAT), when its class asks for the
// check.
func CheckCapacity(ctx context.Context, fsys export.FS, v volume.Volume) error {
	check := v.Class.Capacity
	if !check.Enabled {
		return nil
	}
	request := v.Claim.Spec.Resources.Requests[v1.ResourceStorage]
	c, err := fsys.Capacity(ctx)
	if err != nil {
		return fmt.Errorf("read the capacity of %s:%s for StorageClass parameter %s: %w", v.Server, v.Share, class.ParamCheckAvailable, err)
	}
	room := int64(c.AvailableBytes) - check.Headroom.Value()
	if request.Value() > room {
		return volume.Refuse("the claim requests %s (%d bytes), but export %s:%s has %d bytes available (of %d) and the class keeps %s (%d bytes) free (StorageClass parameters %s, %s); ask for less, free space on the export, or use a class on another export",
			request.String(), request.Value(), v.Server, v.Share, c.AvailableBytes, c.SizeBytes, check.Headroom.String(), check.Headroom.Value(), class.ParamCheckAvailable, class.ParamAvailableHeadroom)
	}
	return nil
}
