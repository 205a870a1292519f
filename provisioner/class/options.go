// Package class reads what a StorageClass and a claim ask for: the class's parameters (Params is
// the one list of them, which the chart's schema and README are checked against) and the claim's
// owner and mode annotations, parsed and validated into Options. It owns no behaviour and calls
// nothing but the path-pattern syntax check.
package class

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/pathpattern"
)

// OnDelete says what happens to a volume's directory when its PV is deleted.
type OnDelete string

const (
	OnDeleteArchive OnDelete = "archive" // rename to archived-<name> (the default)
	OnDeleteDelete  OnDelete = "delete"  // remove the directory tree
	OnDeleteRetain  OnDelete = "retain"  // leave the directory as it is
)

// StorageClass parameter names.
const (
	ParamArchiveOnDelete   = "archiveOnDelete"
	ParamOnDelete          = "onDelete"
	ParamPathPattern       = "pathPattern"
	ParamServer            = "server"
	ParamShare             = "share"
	ParamMode              = "mode"
	ParamUID               = "uid"
	ParamGID               = "gid"
	ParamReuseDirectory    = "reuseDirectory"
	ParamClaimUIDs         = "claimUIDs"
	ParamClaimGIDs         = "claimGIDs"
	ParamClaimMode         = "claimMode"
	ParamCheckAvailable    = "checkAvailable"
	ParamAvailableHeadroom = "availableHeadroom"
	ParamArchiveRetention  = "archiveRetention"
	ParamNFSVersion        = "nfsVersion"
)

// Param is one StorageClass parameter and what it accepts.
type Param struct{ Name, Accepts string }

// Params is every StorageClass parameter the provisioner accepts: the one list that Parse, its
// error messages, and the chart's values schema and README are checked against.
var Params = []Param{
	{ParamArchiveOnDelete, `"true" or "false"`},
	{ParamOnDelete, `"archive", "delete" or "retain"`},
	{ParamPathPattern, `a relative path with ${.PVC.namespace}, ${.PVC.name}, ${.PVC.labels.<key>}, ${.PVC.annotations.<key>}, ${.PV.name}`},
	{ParamServer, `an NFS server host name or IP address`},
	{ParamShare, `an absolute export path such as /srv/nfs`},
	{ParamMode, `octal permission bits 0000-7777, such as "0775"`},
	{ParamUID, `a numeric user id 0-4294967294`},
	{ParamGID, `a numeric group id 0-4294967294`},
	{ParamReuseDirectory, `"namespace", "never" or "any"`},
	{ParamClaimUIDs, `"any", "none" or uids and ranges such as "1000-1999,2500"`},
	{ParamClaimGIDs, `"any", "none" or gids and ranges such as "1000-1999,2500"`},
	{ParamClaimMode, `"any" or "none"`},
	{ParamCheckAvailable, `"true" or "false"`},
	{ParamAvailableHeadroom, `a quantity such as "10Gi" (implies checkAvailable)`},
	{ParamArchiveRetention, `a Go duration above zero such as "720h" (30 days)`},
	{ParamNFSVersion, `"3", "4.1" or "auto" (4.1 when the server answers it, else 3); mountOptions nfsvers= or vers= say it too`},
}

// validParams is Params by name.
var validParams = func() map[string]string {
	m := make(map[string]string, len(Params))
	for _, p := range Params {
		m[p.Name] = p.Accepts
	}
	return m
}()

// Options are a StorageClass's parameters, parsed and validated.
type Options struct {
	OnDelete    OnDelete
	PathPattern string
	Server      string // empty: the provisioner's default server
	Share       string // empty: the provisioner's default export path
	Owner       OwnerOverride
	Reuse       Reuse       // when an existing directory may be a claim's
	Claims      ClaimPolicy // which owner/mode annotations claims may use
	Capacity    CapacityCheck
	// Retention is how long archives of the class's volumes are kept before the sweeper
	// removes them (archiveRetention); 0 keeps them for good.
	Retention time.Duration
	// Version is the NFS version the class's exports are spoken to with (nfsVersion, or the
	// nfsvers/vers of its mountOptions: see WithMountOptions); "" is the provisioner's default.
	Version export.Version
}

// OwnerOverride holds optional owner and mode settings; nil means "not set
// here", so the next source in precedence order applies.
type OwnerOverride struct {
	Mode *export.Mode
	UID  *uint32
	GID  *uint32
}

// ParamError names a bad parameter and says what would be accepted.
type ParamError struct {
	Source string // "StorageClass parameter" or "PVC annotation"
	Name   string
	Value  string
	Reason string
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Source, e.Name, e.Reason)
}

// Parse validates a StorageClass's parameters. Unknown keys and
// malformed values are refused with an error naming the parameter, so a typo
// never silently falls back to a default.
func Parse(params map[string]string) (Options, error) {
	opts := Options{OnDelete: OnDeleteArchive, Reuse: ReuseNamespace, Claims: DefaultClaimPolicy}
	bad := func(name, reason string) error {
		return &ParamError{Source: "StorageClass parameter", Name: name, Value: params[name], Reason: reason}
	}
	for _, key := range sortedKeys(params) {
		if _, ok := validParams[key]; !ok {
			return opts, bad(key, "unknown parameter; valid parameters are "+strings.Join(sortedKeys(validParams), ", "))
		}
	}

	var err error
	if opts.OnDelete, err = parseOnDelete(params, bad); err != nil {
		return opts, err
	}
	if v, ok := params[ParamPathPattern]; ok {
		if err := pathpattern.Check(v); err != nil {
			return opts, bad(ParamPathPattern, err.Error())
		}
		opts.PathPattern = v
	}
	if v, ok := params[ParamServer]; ok {
		s := strings.TrimSpace(v)
		if s == "" || strings.ContainsAny(s, "/ \t\n\x00") {
			return opts, bad(ParamServer, fmt.Sprintf("%q is not %s", v, validParams[ParamServer]))
		}
		opts.Server = s
	}
	if v, ok := params[ParamShare]; ok {
		s, err := CleanShare(v)
		if err != nil {
			return opts, bad(ParamShare, err.Error())
		}
		opts.Share = s
	}

	if err := parseTenancy(params, &opts, bad); err != nil {
		return opts, err
	}
	if err := parseCapacityCheck(params, &opts, bad); err != nil {
		return opts, err
	}
	if v, ok := params[ParamArchiveRetention]; ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			return opts, bad(ParamArchiveRetention, fmt.Sprintf("%q is not %s", v, validParams[ParamArchiveRetention]))
		}
		if opts.OnDelete != OnDeleteArchive {
			return opts, bad(ParamArchiveRetention, fmt.Sprintf("applies to archives, but onDelete is %s; remove %s or archive on delete", opts.OnDelete, ParamArchiveRetention))
		}
		opts.Retention = d
	}
	if v, ok := params[ParamNFSVersion]; ok {
		switch strings.TrimSpace(v) {
		case "3", "4.1", "auto":
			opts.Version = export.Version(strings.TrimSpace(v))
		case "4":
			opts.Version = "4.1" // NFSv4.0 is not spoken; servers of 4 speak 4.1
		default:
			return opts, bad(ParamNFSVersion, fmt.Sprintf("%q is not %s", v, validParams[ParamNFSVersion]))
		}
	}
	if opts.Owner, err = parseOwner(params, ParamMode, ParamUID, ParamGID); err != nil {
		pe := err.(*ParamError)
		pe.Source = "StorageClass parameter"
		return opts, pe
	}
	return opts, nil
}

// MountVersion is the NFS version a class's mountOptions name for kubelet (nfsvers= or vers=,
// the last one winning as with mount(8)), as the provisioner speaks it: "3" for 3, "4.1" for 4.1
// (an EFS or Azure Files class), and "auto" for 4, 4.0 and 4.2 (the provisioner speaks 4.1 when
// the server does, else 3, as it did before it spoke NFSv4); "" when they name none.
func MountVersion(mountOptions []string) (export.Version, error) {
	var v export.Version
	for _, o := range mountOptions {
		for _, opt := range strings.Split(o, ",") {
			key, val, ok := strings.Cut(strings.TrimSpace(opt), "=")
			if !ok || (key != "nfsvers" && key != "vers") {
				continue
			}
			switch {
			case val == "3":
				v = "3"
			case val == "4.1":
				v = "4.1"
			case val == "4" || strings.HasPrefix(val, "4."):
				v = "auto"
			default:
				return "", fmt.Errorf("mountOptions %s: the provisioner speaks NFS 3 and 4.1; say nfsvers=3 or nfsvers=4.1", opt)
			}
		}
	}
	return v, nil
}

// WithMountOptions completes o's version from the class's mountOptions: a version they name is
// the one provisioning uses too, so kubelet and the provisioner speak the same. An nfsVersion
// parameter saying another is refused.
func (o Options) WithMountOptions(mountOptions []string) (Options, error) {
	mv, err := MountVersion(mountOptions)
	switch {
	case err != nil:
		return o, err
	case mv == "":
	case o.Version == "" || o.Version == export.Version("auto"):
		o.Version = mv
	case mv == "auto":
		// nfsvers=4 and nfsVersion 3 or 4.1: the parameter says which the provisioner speaks.
	case o.Version != mv:
		return o, &ParamError{Source: "StorageClass parameter", Name: ParamNFSVersion, Value: string(o.Version),
			Reason: fmt.Sprintf("the class's mountOptions mount with NFS %s; make them agree or remove %s", mv, ParamNFSVersion)}
	}
	return o, nil
}

// parseOnDelete reads archiveOnDelete (the anchor's) and onDelete (ours, which also knows retain);
// archive unless they say otherwise.
func parseOnDelete(params map[string]string, bad func(name, reason string) error) (OnDelete, error) {
	onDelete := OnDeleteArchive
	archive, archiveSet := true, false
	if v, ok := params[ParamArchiveOnDelete]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return onDelete, bad(ParamArchiveOnDelete, fmt.Sprintf("%q is not %s", v, validParams[ParamArchiveOnDelete]))
		}
		archive, archiveSet = b, true
	}
	if !archive {
		onDelete = OnDeleteDelete
	}
	v, ok := params[ParamOnDelete]
	if !ok {
		return onDelete, nil
	}
	od := OnDelete(strings.ToLower(strings.TrimSpace(v)))
	switch od {
	case OnDeleteArchive, OnDeleteDelete, OnDeleteRetain:
	default:
		return onDelete, bad(ParamOnDelete, fmt.Sprintf("%q is not %s", v, validParams[ParamOnDelete]))
	}
	// onDelete overrides archiveOnDelete; when both are given they must agree,
	// otherwise the admin cannot know which one wins.
	if archiveSet && (od == OnDeleteArchive) != archive {
		return onDelete, bad(ParamOnDelete, fmt.Sprintf("%q conflicts with %s=%q; remove %s or make them agree",
			v, ParamArchiveOnDelete, params[ParamArchiveOnDelete], ParamArchiveOnDelete))
	}
	return od, nil
}

// CleanShare checks an export path: absolute, no "..", no NUL. A trailing
// slash is dropped.
func CleanShare(v string) (string, error) {
	s := strings.TrimSpace(v)
	if !strings.HasPrefix(s, "/") {
		return "", fmt.Errorf("%q is not %s", v, validParams[ParamShare])
	}
	if strings.ContainsAny(s, "\x00\n") {
		return "", fmt.Errorf("%q contains a NUL or newline", v)
	}
	for _, elem := range strings.Split(s, "/") {
		if elem == ".." || elem == "." {
			return "", fmt.Errorf("%q contains %q; give the export path exactly as the server exports it", v, elem)
		}
	}
	if len(s) > 1 {
		s = strings.TrimRight(s, "/")
	}
	return s, nil
}

// Annotations on a PVC that choose the directory's owner and mode.
const (
	AnnDirectoryMode = "k8s-sigs.io/nfs-directory-mode"
	AnnDirectoryUID  = "k8s-sigs.io/nfs-directory-uid"
	AnnDirectoryGID  = "k8s-sigs.io/nfs-directory-gid"
)

// ParseClaimOwner reads the owner/mode annotations of a claim.
func ParseClaimOwner(annotations map[string]string) (OwnerOverride, error) {
	o, err := parseOwner(annotations, AnnDirectoryMode, AnnDirectoryUID, AnnDirectoryGID)
	if err != nil {
		err.(*ParamError).Source = "PVC annotation"
	}
	return o, err
}

func parseOwner(m map[string]string, modeKey, uidKey, gidKey string) (OwnerOverride, error) {
	var o OwnerOverride
	if v, ok := m[modeKey]; ok {
		mode, err := ParseMode(v)
		if err != nil {
			return o, &ParamError{Name: modeKey, Value: v, Reason: err.Error()}
		}
		o.Mode = &mode
	}
	for _, f := range []struct {
		key string
		dst **uint32
	}{{uidKey, &o.UID}, {gidKey, &o.GID}} {
		v, ok := m[f.key]
		if !ok {
			continue
		}
		id, err := ParseID(v)
		if err != nil {
			return o, &ParamError{Name: f.key, Value: v, Reason: err.Error()}
		}
		*f.dst = &id
	}
	return o, nil
}

// ParseMode parses octal permission bits, "0775" or "775"; 0-07777.
func ParseMode(v string) (export.Mode, error) {
	s := strings.TrimSpace(v)
	if s == "" || len(s) > 5 {
		return 0, fmt.Errorf("%q is not %s", v, validParams[ParamMode])
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return 0, fmt.Errorf("%q is not %s", v, validParams[ParamMode])
	}
	return export.Mode(n), nil
}

// ParseID parses a numeric uid or gid. 4294967295 is refused: it is -1, "no
// change", to the server.
func ParseID(v string) (uint32, error) {
	s := strings.TrimSpace(v)
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, fmt.Errorf("%q is not a numeric id 0-4294967294 (names are not resolved)", v)
	}
	return uint32(n), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
