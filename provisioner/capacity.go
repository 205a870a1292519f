package provisioner

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// Export capacity: how big and how full each export in use is (FSSTAT
// each interval, as metrics), and, for classes that ask for it, a claim
// refused when its export has not the room it requests.

// StorageClass parameters of the capacity check (default off: the other
// project never refused a claim for its size).
const (
	ParamCheckAvailable    = "checkAvailable"
	ParamAvailableHeadroom = "availableHeadroom"
)

// CapacityCheck is a class's capacity check: refuse a claim whose request
// is more than the export's available bytes less Headroom.
type CapacityCheck struct {
	Enabled  bool
	Headroom resource.Quantity
}

func parseCapacityCheck(params map[string]string, opts *ClassOptions, bad func(name, reason string) error) error {
	if v, ok := params[ParamCheckAvailable]; ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			opts.Capacity.Enabled = true
		case "false":
		default:
			return bad(ParamCheckAvailable, fmt.Sprintf("%q is not %s", v, validParams[ParamCheckAvailable]))
		}
	}
	if v, ok := params[ParamAvailableHeadroom]; ok {
		q, err := resource.ParseQuantity(strings.TrimSpace(v))
		if err != nil || q.Sign() < 0 {
			return bad(ParamAvailableHeadroom, fmt.Sprintf("%q is not %s", v, validParams[ParamAvailableHeadroom]))
		}
		opts.Capacity.Headroom = q
		opts.Capacity.Enabled = true
	}
	return nil
}

// checkCapacity refuses a request the export cannot hold (one FSSTAT).
func checkCapacity(ctx context.Context, fsys export.FS, v claimVolume, check CapacityCheck, request resource.Quantity) error {
	c, err := fsys.Capacity(ctx)
	if err != nil {
		return fmt.Errorf("read the capacity of %s:%s for StorageClass parameter %s: %w", v.server, v.share, ParamCheckAvailable, err)
	}
	room := int64(c.AvailableBytes) - check.Headroom.Value()
	if request.Value() > room {
		return refusePlacement("the claim requests %s (%d bytes), but export %s:%s has %d bytes available (of %d) and the class keeps %s (%d bytes) free (StorageClass parameters %s, %s); ask for less, free space on the export, or use a class on another export",
			request.String(), request.Value(), v.server, v.share, c.AvailableBytes, c.SizeBytes, check.Headroom.String(), check.Headroom.Value(), ParamCheckAvailable, ParamAvailableHeadroom)
	}
	return nil
}

// Monitor reads, every interval until ctx ends, the capacity of every
// export in use (the default one and those of this provisioner's
// StorageClasses) and, with a scanner, the usage of every volume, and
// hands them to Config.Observe. Run it while leading.
func (p *Provisioner) Monitor(ctx context.Context, interval time.Duration, scanner *UsageScanner) {
	if interval <= 0 || p.cfg.Observe == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p.readExports(ctx)
		if scanner != nil {
			scanner.Scan(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readExports reads the capacity of every export in use once.
func (p *Provisioner) readExports(ctx context.Context) {
	for _, target := range p.exportsInUse() {
		var c export.Capacity
		err := p.onExport(ctx, target[0], target[1], p.cfg.Timeout, func(ctx context.Context, fsys export.FS) (err error) {
			c, err = fsys.Capacity(ctx)
			return err
		})
		if err != nil {
			klog.FromContext(ctx).V(2).Info("export capacity not read", "server", target[0], "share", target[1], "err", err)
			continue
		}
		p.cfg.Observe.ExportCapacity(target[0], target[1], c)
	}
}

// exportsInUse lists each export once, as (server, share) spelt by its
// first user.
func (p *Provisioner) exportsInUse() [][2]string {
	seen := map[export.Target]bool{}
	var out [][2]string
	add := func(server, share string) {
		if server == "" || share == "" {
			return
		}
		if t := export.NewTarget(server, share); !seen[t] {
			seen[t] = true
			out = append(out, [2]string{server, share})
		}
	}
	add(p.cfg.DefaultServer, p.cfg.DefaultShare)
	if p.cfg.Classes == nil {
		return out
	}
	classes, err := p.cfg.Classes.List(labels.Everything())
	if err != nil {
		return out
	}
	for _, sc := range classes {
		if sc.Provisioner != p.cfg.Name {
			continue
		}
		opts, err := ParseClassOptions(sc.Parameters)
		if err != nil {
			continue
		}
		add(p.target(opts))
	}
	return out
}
