package wire

import (
	"fmt"
	"os"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
)

// Observer is told about every RPC round trip: the server (host as given
// to Open), the operation ("MKDIR", "LOOKUP", "MNT", "GETPORT", ...), how
// long it took and its result. err is nil on success, a *StatusError when
// the server answered with an NFS or MOUNT error status, or a transport or
// protocol error; Result(err) gives a low-cardinality label for it. One
// call of the Observer is one round trip, so counting calls counts round
// trips. It is called synchronously and must be fast and safe for
// concurrent use.
type Observer = sunrpc.Observer

// Version is the NFS protocol version an Opener speaks.
type Version string

const (
	Version3    Version = "3"    // NFSv3 with MOUNT and the portmapper (RFC 1813)
	Version41   Version = "4.1"  // NFSv4.1 sessions on port 2049, paths in the pseudo-filesystem (RFC 8881)
	VersionAuto Version = "auto" // 4.1 when the server answers it, else 3
)

// ParseVersion reads a version as users write it: "3", "4.1", "4" (taken as 4.1: NFSv4.0 is
// not spoken) or "auto"; "" is def.
func ParseVersion(s string, def Version) (Version, error) {
	switch s {
	case "":
		return def, nil
	case "3":
		return Version3, nil
	case "4", "4.1":
		return Version41, nil
	case "auto":
		return VersionAuto, nil
	}
	return "", fmt.Errorf("NFS version %q: say 3, 4.1 or auto", s)
}

// Options configure an Opener. The zero value asks the portmapper for the
// ports and uses the defaults below.
type Options struct {
	// Version is the protocol spoken; "" means Version3.
	Version Version
	// OwnerDomain, over NFSv4.1, is appended to the numeric owner strings ("2000@domain");
	// "" sends bare numbers ("2000"), as EFS and Linux servers without idmapping expect.
	OwnerDomain string

	// NFSPort and MountPort skip the portmapper when non-zero (NFSv4.1 uses NFSPort, or 2049). Servers
	// without a portmapper (the in-process test server) serve both
	// programs on one port: give it for both.
	NFSPort   int
	MountPort int
	// PortmapPort is where the portmapper listens; 0 means 111.
	PortmapPort int

	// Timeout bounds every call (dial included) whose context has no
	// earlier deadline; 0 means 10s.
	Timeout time.Duration

	// SourcePort is which client port connections come from; the zero
	// value, sunrpc.SourcePortAuto, is a reserved one when this process may bind it.
	SourcePort sunrpc.SourcePort

	// MachineName goes into the AUTH_SYS credential; "" means the host name.
	MachineName string

	// Observer, when set, sees every round trip.
	Observer Observer
	// Opened, when set, is told of every export opened and the version it is spoken to with
	// (what VersionAuto chose): for a metric.
	Opened func(server, share string, v Version)

	// MaxReplySize limits one reply record; 0 means 1 MiB.
	MaxReplySize int
	// ReaddirBytes is the maxcount of READDIRPLUS calls; 0 means 32 KiB.
	ReaddirBytes uint32
	// RemoveStackDepth bounds the directories RemoveAll keeps on its
	// stack while walking down a tree; 0 means 256. A deeper tree is
	// finished by walking again from the top.
	RemoveStackDepth int
	// MaxCachedDirs bounds the directory handle cache of each export;
	// 0 means 100,000. When it is exceeded the cache is emptied.
	MaxCachedDirs int
}

func (o Options) withDefaults() Options {
	if o.Version == "" {
		o.Version = Version3
	}
	if o.PortmapPort == 0 {
		o.PortmapPort = 111
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MachineName == "" {
		o.MachineName, _ = os.Hostname()
		if o.MachineName == "" {
			o.MachineName = "nfs-subdir-provisioner"
		}
	}
	if len(o.MachineName) > 255 { // RFC 5531: machinename<255>
		o.MachineName = o.MachineName[:255]
	}
	if o.MaxReplySize <= 0 {
		o.MaxReplySize = 1 << 20
	}
	if o.ReaddirBytes == 0 {
		o.ReaddirBytes = 32 << 10
	}
	if o.ReaddirBytes < 4096 {
		o.ReaddirBytes = 4096
	}
	if o.RemoveStackDepth <= 0 {
		o.RemoveStackDepth = 256
	}
	if o.MaxCachedDirs <= 0 {
		o.MaxCachedDirs = 100000
	}
	return o
}

// rpcConfig is how this package's RPC clients call.
func (o *Options) rpcConfig() sunrpc.Config {
	return sunrpc.Config{Timeout: o.Timeout, MachineName: o.MachineName, MaxRecord: o.MaxReplySize, Observer: o.Observer}
}
