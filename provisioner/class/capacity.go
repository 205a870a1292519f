package class

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// CapacityCheck is a class's capacity check (checkAvailable, availableHeadroom; off by default:
// the other project never refused a claim for its size): refuse a claim whose request is more
// than the export's available bytes less Headroom.
type CapacityCheck struct {
	Enabled  bool
	Headroom resource.Quantity
}

func parseCapacityCheck(params map[string]string, opts *Options, bad func(name, reason string) error) error {
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
