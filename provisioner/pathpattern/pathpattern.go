package pathpattern

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	v1 "k8s.io/api/core/v1"
)

const (
	// maxNameBytes is NAME_MAX on every NFS server we know of.
	maxNameBytes = export.MaxNameBytes
	// maxPathBytes keeps a volume path well inside PATH_MAX once joined to
	// the export path.
	maxPathBytes = 2048
	// hashSuffixLen hex digits of SHA-256 make shortened names unique.
	hashSuffixLen = 16
)

// DefaultDirName is the directory a claim gets when the class has no
// pathPattern: "<namespace>-<pvcName>-<pvName>". Names over 255 bytes are
// shortened and given a hash of the whole name, so two claims never share a
// directory because of truncation.
func DefaultDirName(namespace, pvcName, pvName string) string {
	return ShortenName(namespace + "-" + pvcName + "-" + pvName)
}

// ShortenName returns name unchanged when it fits in one path component,
// otherwise a prefix of it followed by "-" and a hash of the whole name.
func ShortenName(name string) string {
	if len(name) <= maxNameBytes {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:])[:hashSuffixLen]
	prefix := name[:maxNameBytes-len(suffix)]
	// Do not cut a multi-byte UTF-8 sequence in half.
	for len(prefix) > 0 && prefix[len(prefix)-1]&0xC0 == 0x80 {
		prefix = prefix[:len(prefix)-1]
	}
	if n := len(prefix); n > 0 && prefix[n-1] >= 0xC0 {
		prefix = prefix[:n-1]
	}
	return prefix + suffix
}

// patternVar is one ${...} reference in a pathPattern.
type patternVar struct {
	start, end int    // byte offsets of "${" and one past "}"
	kind       string // "namespace", "name", "labels", "annotations", "pvname"
	key        string // for labels and annotations
}

// parsePattern finds the ${...} references of a pathPattern and checks
// each one is a known form.
func parsePattern(pattern string) ([]patternVar, error) {
	var vars []patternVar
	for i := 0; i < len(pattern); {
		open := strings.Index(pattern[i:], "${")
		if open < 0 {
			break
		}
		open += i
		closing := strings.IndexByte(pattern[open:], '}')
		if closing < 0 {
			return nil, fmt.Errorf("unclosed ${ at byte %d", open)
		}
		closing += open
		expr := strings.TrimSpace(pattern[open+2 : closing])
		v := patternVar{start: open, end: closing + 1}
		switch {
		case expr == ".PVC.namespace":
			v.kind = "namespace"
		case expr == ".PVC.name":
			v.kind = "name"
		case expr == ".PV.name":
			v.kind = "pvname"
		case strings.HasPrefix(expr, ".PVC.labels."):
			v.kind, v.key = "labels", strings.TrimPrefix(expr, ".PVC.labels.")
		case strings.HasPrefix(expr, ".PVC.annotations."):
			v.kind, v.key = "annotations", strings.TrimPrefix(expr, ".PVC.annotations.")
		default:
			return nil, fmt.Errorf("unknown reference ${%s}; use ${.PVC.namespace}, ${.PVC.name}, ${.PVC.labels.<key>}, ${.PVC.annotations.<key>} or ${.PV.name}", expr)
		}
		if (v.kind == "labels" || v.kind == "annotations") && v.key == "" {
			return nil, fmt.Errorf("${%s} names no key", expr)
		}
		vars = append(vars, v)
		i = closing + 1
	}
	return vars, nil
}

// CheckPattern validates a pathPattern's syntax and its literal text, so
// that a class that can never work is refused on its first claim with a
// clear message.
func Check(pattern string) error {
	vars, err := parsePattern(pattern)
	if err != nil {
		return err
	}
	literal := pattern
	for i := len(vars) - 1; i >= 0; i-- {
		literal = literal[:vars[i].start] + "x" + literal[vars[i].end:]
	}
	if strings.HasPrefix(strings.TrimSpace(literal), "/") {
		return fmt.Errorf("%q is absolute; a pathPattern is relative to the export", pattern)
	}
	for _, elem := range strings.Split(literal, "/") {
		if elem == ".." {
			return fmt.Errorf("%q contains \"..\"; a pathPattern must stay inside the export", pattern)
		}
	}
	if strings.ContainsAny(pattern, "\x00") || hasControl(pattern) {
		return fmt.Errorf("pathPattern contains a control character")
	}
	return nil
}

// VolumePath computes the directory of a claim relative to the export root:
// the expanded pathPattern, or DefaultDirName when the class has none or the
// pattern expands to nothing. The result is a clean, relative path that
// cannot leave the export; anything else is an error saying why.
func Expand(pattern string, claim *v1.PersistentVolumeClaim, pvName string) (string, error) {
	def := DefaultDirName(claim.Namespace, claim.Name, pvName)
	if pattern == "" {
		return def, nil
	}
	vars, err := parsePattern(pattern)
	if err != nil {
		return "", fmt.Errorf("pathPattern: %w", err)
	}
	var b strings.Builder
	last := 0
	for _, v := range vars {
		b.WriteString(pattern[last:v.start])
		switch v.kind {
		case "namespace":
			b.WriteString(claim.Namespace)
		case "name":
			b.WriteString(claim.Name)
		case "pvname":
			b.WriteString(pvName)
		case "labels":
			b.WriteString(claim.Labels[v.key])
		case "annotations":
			b.WriteString(claim.Annotations[v.key])
		}
		last = v.end
	}
	b.WriteString(pattern[last:])
	expanded := b.String()
	if strings.TrimSpace(expanded) == "" {
		return def, nil
	}
	p, err := SafeRelPath(expanded)
	if err != nil {
		return "", fmt.Errorf("pathPattern %q expands to %q: %w", pattern, expanded, err)
	}
	return p, nil
}

// SafeRelPath checks that p is a path below the export root and returns it
// in canonical form (empty and "." elements dropped). Absolute paths, "..",
// NUL and control characters, over-long components and paths that name the
// root itself are refused, never repaired.
func SafeRelPath(p string) (string, error) {
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("absolute path; it must be relative to the export")
	}
	if strings.IndexByte(p, 0) >= 0 || hasControl(p) {
		return "", fmt.Errorf("contains a NUL or control character")
	}
	var elems []string
	for _, elem := range strings.Split(p, "/") {
		switch {
		case elem == "" || elem == ".":
			continue
		case elem == "..":
			return "", fmt.Errorf("contains \"..\"; the path must stay inside the export")
		case len(elem) > maxNameBytes:
			return "", fmt.Errorf("component %.40q... is %d bytes, over the %d-byte limit", elem, len(elem), maxNameBytes)
		}
		elems = append(elems, elem)
	}
	if len(elems) == 0 {
		return "", fmt.Errorf("names the export root itself")
	}
	clean := strings.Join(elems, "/")
	if len(clean) > maxPathBytes {
		return "", fmt.Errorf("is %d bytes, over the %d-byte limit", len(clean), maxPathBytes)
	}
	return clean, nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// PatternIsClaimOwn reports whether every path the pattern gives is unique
// to its claim: the default name (the PV name in full or in the hash of a
// shortened name) or a pattern with ${.PV.name}. An existing directory at
// such a path can only be the claim's own, from an earlier attempt.
func ClaimOwn(pattern string) bool {
	if pattern == "" {
		return true
	}
	vars, err := parsePattern(pattern)
	if err != nil {
		return false
	}
	for _, v := range vars {
		if v.kind == "pvname" {
			return true
		}
	}
	return false
}

// NamespacePrefix is how a namespace-scoped pattern begins.
const NamespacePrefix = "${.PVC.namespace}/"

// PatternIsNamespaceScoped reports whether every path the pattern gives
// lies below a directory named after the claim's namespace.
func NamespaceScoped(pattern string) bool {
	return strings.HasPrefix(pattern, NamespacePrefix)
}
