package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire"
)

// sourcePortFlag is --privileged-port: a boolean flag (alone it means true) that also takes auto.
type sourcePortFlag struct{ p *sunrpc.SourcePort }

func (f sourcePortFlag) IsBoolFlag() bool { return true }
func (f sourcePortFlag) String() string {
	if f.p == nil {
		return sunrpc.SourcePortAuto.String()
	}
	return f.p.String()
}
func (f sourcePortFlag) Set(s string) error {
	p, err := sunrpc.ParseSourcePort(s)
	if err != nil {
		return err
	}
	*f.p = p
	return nil
}

// Config is the provisioner's configuration, from flags and from the
// environment variables of nfs-subdir-external-provisioner.
type Config struct {
	ProvisionerName string
	NFSServer       string
	NFSPath         string
	Defaults        class.OwnerOverride

	Kubeconfig   string
	KubeAPIQPS   float64
	KubeAPIBurst int
	Workers      int
	RetryMax     time.Duration

	LeaderElection          bool
	LeaderElectionNamespace string
	LeaseDuration           time.Duration
	RenewDeadline           time.Duration
	RetryPeriod             time.Duration

	MetricsAddress      string
	NFSTimeout          time.Duration
	RemoveTimeout       time.Duration
	UsageInterval       time.Duration
	UsageCallsPerSecond float64
	ArchiveSweep        time.Duration // how often archives past their class's archiveRetention are purged
	ArchiveSweepDryRun  bool          // say what would be purged, purge nothing
	Backend             string
	MountRoot           string
	SourcePort          sunrpc.SourcePort
	NFSVersion          wire.Version // "" when NFS_VERSION is not set: NFSv3
	OwnerDomain         string
	NFSPort             int
	MountPort           int

	ShowVersion bool
}

// configError is a configuration problem, reported in one line.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func badConfig(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

// parseConfig reads flags (args) with defaults taken from getenv. A flag
// given on the command line wins over its environment variable.
func parseConfig(fs *flag.FlagSet, args []string, getenv func(string) string) (*Config, error) {
	c := &Config{}
	env := &envDefaults{getenv: getenv}
	var owner ownerFlags
	c.registerFlags(fs, env, &owner)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	// A word left over ends the flags silently ("--privileged-port auto" is --privileged-port and
	// the word auto): refuse it rather than ignore every flag after it.
	if fs.NArg() > 0 {
		return nil, badConfig("unexpected argument %q: flags take their value with = (--privileged-port=auto)", fs.Arg(0))
	}
	if env.err != nil {
		return nil, env.err
	}
	if c.ShowVersion {
		return c, nil
	}
	if err := c.setDefaults(owner.mode, owner.uid, owner.gid); err != nil {
		return nil, err
	}
	return c, c.validate()
}

// ownerFlags are the default owner and mode as given, parsed by setDefaults.
type ownerFlags struct{ mode, uid, gid string }

// envDefaults reads flag defaults from the environment; a malformed value
// is remembered (the first) and reported after parsing.
type envDefaults struct {
	getenv func(string) string
	err    error
}

func (e *envDefaults) str(name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

func (e *envDefaults) boolean(name string, def bool) bool {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil && e.err == nil {
		e.err = badConfig("%s=%q: want true or false", name, v)
	}
	return b
}

func (e *envDefaults) duration(name string, def time.Duration) time.Duration {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if (err != nil || d < 0) && e.err == nil {
		e.err = badConfig("%s=%q: want a Go duration such as 10m, or 0 to disable", name, v)
	}
	return d
}

// registerFlags defines every flag on fs, its default from env where the
// anchor (or we) read one.
func (c *Config) registerFlags(fs *flag.FlagSet, env *envDefaults, owner *ownerFlags) {
	fs.StringVar(&c.ProvisionerName, "provisioner-name", env.getenv("PROVISIONER_NAME"), "name StorageClasses use in their provisioner field (env PROVISIONER_NAME)")
	fs.StringVar(&c.NFSServer, "nfs-server", env.getenv("NFS_SERVER"), "default NFS server (env NFS_SERVER)")
	fs.StringVar(&c.NFSPath, "nfs-path", env.getenv("NFS_PATH"), "default export path on the server (env NFS_PATH)")
	fs.StringVar(&owner.mode, "default-mode", env.getenv("NFS_DEFAULT_MODE"), "mode of new directories unless the class or claim says otherwise, octal (env NFS_DEFAULT_MODE; default 0777)")
	fs.StringVar(&owner.uid, "default-uid", env.getenv("NFS_DEFAULT_UID"), "owner uid of new directories (env NFS_DEFAULT_UID; default 0)")
	fs.StringVar(&owner.gid, "default-gid", env.getenv("NFS_DEFAULT_GID"), "owner gid of new directories (env NFS_DEFAULT_GID; default 0)")

	fs.StringVar(&c.Kubeconfig, "kubeconfig", env.getenv("KUBECONFIG"), "kubeconfig file; in-cluster config when empty (env KUBECONFIG)")
	fs.Float64Var(&c.KubeAPIQPS, "kube-api-qps", 200, "queries per second to the Kubernetes API")
	fs.IntVar(&c.KubeAPIBurst, "kube-api-burst", 400, "burst of queries to the Kubernetes API")
	fs.IntVar(&c.Workers, "worker-threads", 16, "claims and volumes processed at once")
	fs.DurationVar(&c.RetryMax, "retry-max-delay", time.Minute, "longest wait between retries of a failing claim or volume")

	fs.BoolVar(&c.LeaderElection, "leader-election", env.boolean("ENABLE_LEADER_ELECTION", true), "elect one active replica through a Lease (env ENABLE_LEADER_ELECTION)")
	fs.StringVar(&c.LeaderElectionNamespace, "leader-election-namespace", env.getenv("POD_NAMESPACE"), "namespace of the Lease (env POD_NAMESPACE)")
	fs.DurationVar(&c.LeaseDuration, "leader-election-lease-duration", 15*time.Second, "how long a Lease is valid without renewal")
	fs.DurationVar(&c.RenewDeadline, "leader-election-renew-deadline", 10*time.Second, "how long the leader retries renewing before it gives up leadership")
	fs.DurationVar(&c.RetryPeriod, "leader-election-retry-period", 2*time.Second, "interval between leader election attempts")

	fs.StringVar(&c.MetricsAddress, "metrics-address", env.str("METRICS_ADDRESS", ":8080"), "address serving /metrics, /healthz and /readyz; empty to disable")
	fs.DurationVar(&c.NFSTimeout, "nfs-timeout", 10*time.Second, "deadline of each NFS call")
	fs.DurationVar(&c.UsageInterval, "usage-interval", env.duration("USAGE_INTERVAL", 10*time.Minute), "how often every export's capacity (FSSTAT) and every volume's usage (a walk of its tree) are read for the metrics (env USAGE_INTERVAL); 0 disables")
	fs.DurationVar(&c.ArchiveSweep, "archive-sweep-interval", env.duration("ARCHIVE_SWEEP_INTERVAL", 10*time.Minute), "how often archives older than their class's archiveRetention are removed (env ARCHIVE_SWEEP_INTERVAL); 0 disables")
	fs.BoolVar(&c.ArchiveSweepDryRun, "archive-sweep-dry-run", env.boolean("ARCHIVE_SWEEP_DRY_RUN", false), "the archive sweeper only says (ArchivePurgeDue Events on the StorageClass) what it would remove (env ARCHIVE_SWEEP_DRY_RUN)")
	fs.Float64Var(&c.UsageCallsPerSecond, "usage-calls-per-second", 50, "budget of listing calls per second per NFS server for the usage scan, so that it never starves provisioning; 0 is unlimited")
	fs.DurationVar(&c.RemoveTimeout, "remove-timeout", 10*time.Minute, "bound on removing one volume's directory tree (onDelete=delete); a bigger tree is finished by the retry")
	fs.StringVar(&c.Backend, "backend", env.str("NFS_BACKEND", "wire"), `"wire": speak NFSv3 or NFSv4.1 (--nfs-version) to the server, no mount; "mounted": use the export mounted at --mount-root`)
	fs.StringVar(&c.MountRoot, "mount-root", env.str("NFS_MOUNT_ROOT", "/persistentvolumes"), "where the export is mounted, for --backend=mounted")
	fs.Var(sourcePortFlag{&c.SourcePort}, "privileged-port", "connect from a source port below 1024, which servers exporting with 'secure' (Linux knfsd's default) require: auto (the default) when the process may bind one (root, CAP_NET_BIND_SERVICE, or a runtime allowing it, as containerd 2 and Docker do), true always (fail otherwise), false never")
	fs.Func("nfs-version", `NFS version of the wire backend where a class does not say (nfsVersion, or nfsvers= in its mountOptions): 3 (when unset), 4.1 (Amazon EFS, Azure Files, servers without v3) or auto (4.1 when the server answers it, else 3) (env NFS_VERSION)`, func(s string) (err error) {
		c.NFSVersion, err = wire.ParseVersion(s, "")
		return err
	})
	if v := env.getenv("NFS_VERSION"); v != "" {
		var err error
		if c.NFSVersion, err = wire.ParseVersion(v, ""); err != nil && env.err == nil {
			env.err = badConfig("NFS_VERSION: %v", err)
		}
	}
	fs.StringVar(&c.OwnerDomain, "nfs-owner-domain", env.str("NFS_OWNER_DOMAIN", ""), `over NFSv4.1, the domain appended to numeric owners ("2000@domain") for servers that want one; empty sends bare numbers ("2000"), as EFS and Linux without idmapping take (env NFS_OWNER_DOMAIN)`)
	fs.IntVar(&c.NFSPort, "nfs-port", 0, "NFS port; 0 asks the server's portmapper (NFSv4.1: 2049)")
	fs.IntVar(&c.MountPort, "mount-port", 0, "MOUNT port; 0 asks the server's portmapper")
	fs.BoolVar(&c.ShowVersion, "version", false, "print the version and exit")
}

func (c *Config) setDefaults(mode, uid, gid string) error {
	if mode != "" {
		m, err := class.ParseMode(mode)
		if err != nil {
			return badConfig("NFS_DEFAULT_MODE (--default-mode): %v", err)
		}
		c.Defaults.Mode = &m
	}
	for _, f := range []struct {
		name, flag, v string
		dst           **uint32
	}{{"NFS_DEFAULT_UID", "--default-uid", uid, &c.Defaults.UID}, {"NFS_DEFAULT_GID", "--default-gid", gid, &c.Defaults.GID}} {
		if f.v == "" {
			continue
		}
		id, err := class.ParseID(f.v)
		if err != nil {
			return badConfig("%s (%s): %v", f.name, f.flag, err)
		}
		*f.dst = &id
	}
	return nil
}

func (c *Config) validate() error {
	switch {
	case c.ProvisionerName == "":
		return badConfig("PROVISIONER_NAME (--provisioner-name) is required, e.g. k8s-sigs.io/nfs-subdir-external-provisioner")
	case strings.ContainsAny(c.ProvisionerName, " \t\n"):
		return badConfig("PROVISIONER_NAME (--provisioner-name) %q contains white space", c.ProvisionerName)
	case c.NFSServer == "":
		return badConfig("NFS_SERVER (--nfs-server) is required: the NFS server's host name or address")
	case c.NFSPath == "":
		return badConfig("NFS_PATH (--nfs-path) is required: the export path, e.g. /srv/nfs")
	case c.KubeAPIQPS <= 0 || c.KubeAPIBurst <= 0:
		return badConfig("--kube-api-qps and --kube-api-burst must be positive")
	case c.Workers <= 0:
		return badConfig("--worker-threads must be positive")
	case c.NFSTimeout <= 0:
		return badConfig("--nfs-timeout must be positive")
	case c.UsageCallsPerSecond < 0:
		return badConfig("--usage-calls-per-second must be 0 (unlimited) or positive")
	case c.UsageInterval < 0:
		return badConfig("--usage-interval must be 0 (off) or positive")
	case c.RemoveTimeout <= 0:
		return badConfig("--remove-timeout must be positive")
	case c.RetryMax <= 0:
		return badConfig("--retry-max-delay must be positive")
	case c.NFSPort < 0 || c.NFSPort > 65535 || c.MountPort < 0 || c.MountPort > 65535:
		return badConfig("--nfs-port and --mount-port must be 0-65535")
	case c.LeaderElection && !(c.LeaseDuration > c.RenewDeadline && c.RenewDeadline > c.RetryPeriod && c.RetryPeriod > 0):
		return badConfig("leader election needs lease-duration > renew-deadline > retry-period > 0")
	}
	share, err := class.CleanShare(c.NFSPath)
	if err != nil {
		return badConfig("NFS_PATH (--nfs-path): %v", err)
	}
	c.NFSPath = share
	switch c.Backend {
	case "wire":
	case "mounted":
		if c.SourcePort == sunrpc.SourcePortReserved || c.NFSPort != 0 || c.MountPort != 0 || c.NFSVersion != "" || c.OwnerDomain != "" {
			return badConfig("--privileged-port, --nfs-port, --mount-port, --nfs-version and --nfs-owner-domain apply to --backend=wire only")
		}
		if fi, err := os.Stat(c.MountRoot); err != nil || !fi.IsDir() {
			return badConfig("--mount-root %q (NFS_MOUNT_ROOT) is not a directory; mount the export there or use --backend=wire", c.MountRoot)
		}
	default:
		return badConfig("--backend %q (NFS_BACKEND): want wire or mounted", c.Backend)
	}
	return nil
}
