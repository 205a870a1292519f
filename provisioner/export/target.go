package export

import (
	"path"
	"strings"
)

// Target is one export on one server, in canonical form: the one identity
// the server gate, the volume index, the session pool, delete and the
// backends compare, so that "nfs.example.", "NFS.example" and " nfs.example"
// are one server and "/srv/nfs/" and "/srv//nfs" one export. Different
// names for one host (an IP address and a name, two CNAMEs) are not
// detected: nothing short of asking the server could tell.
type Target struct {
	Server string // CanonicalServer
	Share  string // CanonicalShare
}

// NewTarget returns the canonical Target of server and share.
func NewTarget(server, share string) Target {
	return Target{Server: CanonicalServer(server), Share: CanonicalShare(share)}
}

func (t Target) String() string { return t.Server + ":" + t.Share }

// CanonicalServer lowercases a host name or address and drops surrounding
// space, the brackets of an IPv6 literal and the trailing dot of a fully
// qualified name.
func CanonicalServer(server string) string {
	s := strings.ToLower(strings.TrimSpace(server))
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	return strings.TrimSuffix(s, ".")
}

// CanonicalShare cleans an export path: one leading slash, no trailing
// slash, no empty or "." elements ("" stays "").
func CanonicalShare(share string) string {
	s := strings.TrimSpace(share)
	if s == "" {
		return ""
	}
	return path.Clean("/" + s)
}
