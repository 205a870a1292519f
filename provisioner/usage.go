package provisioner

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// ReasonUsageExceedsRequest is the Warning Event on a claim whose volume
// holds more than the claim requested.
const ReasonUsageExceedsRequest = "UsageExceedsRequest"

// VolumeUsage is one scanned volume, labelled as kubelet's volume stats are.
type VolumeUsage struct {
	Namespace, Claim, PV string
	Used                 export.Usage
	CapacityBytes        int64
}

// UsageScanner walks every volume this provisioner made, each interval,
// and reports what each holds. The walk of one export's volumes is paced
// to a budget of listing calls per second, so a scan never starves
// provisioning on that server. Run it while leading.
type UsageScanner struct {
	p           *Provisioner
	callsPerSec float64
	mu          sync.Mutex
	limiters    map[string]*rate.Limiter // canonical server → its budget
	overRequest map[string]bool          // PV names last seen above their request
}

// NewUsageScanner returns a scanner with a budget of callsPerSec listing
// calls per second per server (0: unlimited).
func (p *Provisioner) NewUsageScanner(callsPerSec float64) *UsageScanner {
	return &UsageScanner{p: p, callsPerSec: callsPerSec, limiters: map[string]*rate.Limiter{}, overRequest: map[string]bool{}}
}

func (s *UsageScanner) pace(server string) func(context.Context) error {
	if s.callsPerSec <= 0 {
		return nil
	}
	key := export.CanonicalServer(server)
	s.mu.Lock()
	l := s.limiters[key]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(s.callsPerSec), 1)
		s.limiters[key] = l
	}
	s.mu.Unlock()
	return l.Wait
}

// Scan walks every volume once and hands the results to Config.Observe.
func (s *UsageScanner) Scan(ctx context.Context) {
	p := s.p
	if p.cfg.Volumes == nil || p.cfg.Observe == nil {
		return
	}
	start := time.Now()
	var results []VolumeUsage
	failed := 0
	for _, pv := range p.cfg.Volumes.All() {
		if ctx.Err() != nil {
			return
		}
		if pv.Spec.NFS == nil || pv.Spec.ClaimRef == nil || pv.Annotations[annProvisionedBy] != p.cfg.Name || pv.DeletionTimestamp != nil {
			continue
		}
		loc, err := p.locate(pv)
		if err != nil {
			continue
		}
		var used export.Usage
		err = p.onExport(ctx, loc.server, loc.share, p.cfg.RemoveTimeout, func(ctx context.Context, fsys export.FS) (err error) {
			used, err = fsys.Usage(ctx, loc.dir, s.pace(loc.server))
			return err
		})
		if err != nil {
			failed++
			klog.FromContext(ctx).V(2).Info("volume usage not read", "pv", pv.Name, "location", loc, "err", err)
			continue
		}
		capacity := pv.Spec.Capacity[v1.ResourceStorage]
		v := VolumeUsage{Namespace: pv.Spec.ClaimRef.Namespace, Claim: pv.Spec.ClaimRef.Name, PV: pv.Name, Used: used, CapacityBytes: capacity.Value()}
		results = append(results, v)
		s.warnOverRequest(pv, v, capacity.String())
	}
	p.cfg.Observe.VolumeUsage(results, time.Since(start), failed)
}

// warnOverRequest records a Warning Event on the claim when its volume
// goes above the request: once per crossing, not every scan.
func (s *UsageScanner) warnOverRequest(pv *v1.PersistentVolume, v VolumeUsage, capacity string) {
	over := v.CapacityBytes > 0 && v.Used.Bytes > uint64(v.CapacityBytes)
	was := s.overRequest[pv.Name]
	s.overRequest[pv.Name] = over
	if !over || was {
		return
	}
	claim := &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: v.Namespace, Name: v.Claim, UID: pv.Spec.ClaimRef.UID}
	s.p.cfg.Recorder.Event(claim, v1.EventTypeWarning, ReasonUsageExceedsRequest,
		fmt.Sprintf("volume %s uses %d bytes in %d files and directories, more than the %s requested; NFS does not enforce the size, so nothing stops it growing: clean up or ask for more", pv.Name, v.Used.Bytes, v.Used.Inodes, capacity))
}
