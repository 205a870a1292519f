package class

import (
	"fmt"
	"strconv"
	"strings"
)

// What a class lets its claims do on a shared export: reuse a directory
// that is already there, and choose the owner and mode of their own.

// Reuse says when a claim may be given a directory that already exists at
// its path (a pattern without ${.PV.name}, for a claim made again).
type Reuse string

const (
	// ReuseNamespace (the default): only when the path's first element
	// is the claim's namespace, so a claim can only ever be handed a
	// directory of its own namespace.
	ReuseNamespace Reuse = "namespace"
	// ReuseNever: an existing directory is refused.
	ReuseNever Reuse = "never"
	// ReuseAny: any existing directory (what nfs-subdir-external-provisioner
	// does); for clusters whose tenants trust each other.
	ReuseAny Reuse = "any"
)

// IDSet is which numeric ids a claim may ask for with an annotation:
// nil ranges and any == true is every id; neither is none.
type IDSet struct {
	any    bool
	ranges [][2]uint32
}

// AnyID allows every id (the default: what the anchor project did).
var AnyID = IDSet{any: true}

// Allows reports whether id is in the set.
func (s IDSet) Allows(id uint32) bool {
	if s.any {
		return true
	}
	for _, r := range s.ranges {
		if id >= r[0] && id <= r[1] {
			return true
		}
	}
	return false
}

func (s IDSet) String() string {
	if s.any {
		return "any"
	}
	if len(s.ranges) == 0 {
		return "none"
	}
	parts := make([]string, len(s.ranges))
	for i, r := range s.ranges {
		if r[0] == r[1] {
			parts[i] = strconv.FormatUint(uint64(r[0]), 10)
		} else {
			parts[i] = fmt.Sprintf("%d-%d", r[0], r[1])
		}
	}
	return strings.Join(parts, ",")
}

// ParseIDSet parses "any", "none" or a list of ids and ranges such as
// "1000-1999,2500".
func ParseIDSet(v string) (IDSet, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	switch s {
	case "any":
		return AnyID, nil
	case "none":
		return IDSet{}, nil
	}
	var set IDSet
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := ParseID(lo)
		if err != nil {
			return IDSet{}, fmt.Errorf("%q: %v", v, err)
		}
		b := a
		if isRange {
			if b, err = ParseID(hi); err != nil {
				return IDSet{}, fmt.Errorf("%q: %v", v, err)
			}
		}
		if b < a {
			return IDSet{}, fmt.Errorf("%q: range %d-%d is empty", v, a, b)
		}
		set.ranges = append(set.ranges, [2]uint32{a, b})
	}
	return set, nil
}

// ClaimPolicy is what claims of a class may set by annotation.
type ClaimPolicy struct {
	UIDs, GIDs IDSet
	Mode       bool // the mode annotation is honoured
}

// DefaultClaimPolicy honours every annotation, as the anchor project did.
var DefaultClaimPolicy = ClaimPolicy{UIDs: AnyID, GIDs: AnyID, Mode: true}

// Check refuses annotations that ask for more than the class allows,
// naming the parameter the admin controls it with.
func (p ClaimPolicy) Check(o OwnerOverride) error {
	refuse := func(ann, what, param, allowed string) error {
		return fmt.Errorf("PVC annotation %s asks for %s, which StorageClass parameter %s does not allow (it allows %s); remove the annotation or ask the cluster admin",
			ann, what, param, allowed)
	}
	if o.UID != nil && !p.UIDs.Allows(*o.UID) {
		return refuse(AnnDirectoryUID, fmt.Sprintf("uid %d", *o.UID), ParamClaimUIDs, p.UIDs.String())
	}
	if o.GID != nil && !p.GIDs.Allows(*o.GID) {
		return refuse(AnnDirectoryGID, fmt.Sprintf("gid %d", *o.GID), ParamClaimGIDs, p.GIDs.String())
	}
	if o.Mode != nil && !p.Mode {
		return refuse(AnnDirectoryMode, fmt.Sprintf("mode %04o", *o.Mode), ParamClaimMode, "none")
	}
	return nil
}

// parseTenancy reads the tenant-isolation parameters into opts.
func parseTenancy(params map[string]string, opts *Options, bad func(name, reason string) error) error {
	opts.Reuse = ReuseNamespace
	if v, ok := params[ParamReuseDirectory]; ok {
		r := Reuse(strings.ToLower(strings.TrimSpace(v)))
		switch r {
		case ReuseNamespace, ReuseNever, ReuseAny:
		default:
			return bad(ParamReuseDirectory, fmt.Sprintf("%q is not %s", v, validParams[ParamReuseDirectory]))
		}
		opts.Reuse = r
	}
	opts.Claims = DefaultClaimPolicy
	for _, f := range []struct {
		name string
		dst  *IDSet
	}{{ParamClaimUIDs, &opts.Claims.UIDs}, {ParamClaimGIDs, &opts.Claims.GIDs}} {
		v, ok := params[f.name]
		if !ok {
			continue
		}
		set, err := ParseIDSet(v)
		if err != nil {
			return bad(f.name, fmt.Sprintf("%v; want %s", err, validParams[f.name]))
		}
		*f.dst = set
	}
	if v, ok := params[ParamClaimMode]; ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "any":
			opts.Claims.Mode = true
		case "none":
			opts.Claims.Mode = false
		default:
			return bad(ParamClaimMode, fmt.Sprintf("%q is not %s", v, validParams[ParamClaimMode]))
		}
	}
	return nil
}
