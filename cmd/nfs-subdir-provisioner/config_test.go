package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire"
)

func parse(t *testing.T, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return parseConfig(fs, args, func(k string) string { return env[k] })
}

// The anchor project's users set only these variables.
var anchorEnv = map[string]string{
	"PROVISIONER_NAME": "k8s-sigs.io/nfs-subdir-external-provisioner",
	"NFS_SERVER":       "10.0.0.5",
	"NFS_PATH":         "/srv/nfs/",
}

func TestConfigFromAnchorEnv(t *testing.T) {
	c, err := parse(t, anchorEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.ProvisionerName != "k8s-sigs.io/nfs-subdir-external-provisioner" || c.NFSServer != "10.0.0.5" || c.NFSPath != "/srv/nfs" {
		t.Errorf("got %+v", c)
	}
	if !c.LeaderElection || c.Backend != "wire" || c.MetricsAddress != ":8080" {
		t.Errorf("defaults: leader %v backend %q metrics %q", c.LeaderElection, c.Backend, c.MetricsAddress)
	}
	if c.KubeAPIQPS < 100 || c.KubeAPIBurst < 200 {
		t.Errorf("client-go limits %v/%d would throttle provisioning", c.KubeAPIQPS, c.KubeAPIBurst)
	}
	if c.Defaults.Mode != nil || c.Defaults.UID != nil || c.Defaults.GID != nil {
		t.Errorf("owner defaults set without env: %+v", c.Defaults)
	}
}

func TestConfigEnvDefaultsAndFlags(t *testing.T) {
	env := map[string]string{"ENABLE_LEADER_ELECTION": "false", "POD_NAMESPACE": "storage",
		"NFS_DEFAULT_MODE": "0770", "NFS_DEFAULT_UID": "1000", "NFS_DEFAULT_GID": "2000"}
	for k, v := range anchorEnv {
		env[k] = v
	}
	c, err := parse(t, env, "--nfs-server=10.0.0.6", "--kube-api-qps=50", "--nfs-timeout=3s")
	if err != nil {
		t.Fatal(err)
	}
	if c.LeaderElection || c.LeaderElectionNamespace != "storage" {
		t.Errorf("leader election %v in %q", c.LeaderElection, c.LeaderElectionNamespace)
	}
	if *c.Defaults.Mode != 0o770 || *c.Defaults.UID != 1000 || *c.Defaults.GID != 2000 {
		t.Errorf("owner defaults %+v", c.Defaults)
	}
	if c.NFSServer != "10.0.0.6" || c.KubeAPIQPS != 50 || c.NFSTimeout != 3*time.Second {
		t.Errorf("flags did not win over env: %+v", c)
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	with := func(k, v string) map[string]string {
		env := map[string]string{}
		for a, b := range anchorEnv {
			env[a] = b
		}
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
		return env
	}
	tests := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{with("PROVISIONER_NAME", ""), nil, "PROVISIONER_NAME"},
		{with("NFS_SERVER", ""), nil, "NFS_SERVER"},
		{with("NFS_PATH", ""), nil, "NFS_PATH"},
		{with("NFS_PATH", "srv/nfs"), nil, "NFS_PATH"},
		{with("NFS_PATH", "/srv/../etc"), nil, "NFS_PATH"},
		{with("ENABLE_LEADER_ELECTION", "perhaps"), nil, "ENABLE_LEADER_ELECTION"},
		{with("NFS_DEFAULT_MODE", "rwx"), nil, "NFS_DEFAULT_MODE"},
		{with("NFS_DEFAULT_UID", "-5"), nil, "NFS_DEFAULT_UID"},
		{with("NFS_DEFAULT_GID", "x"), nil, "NFS_DEFAULT_GID"},
		{anchorEnv, []string{"--backend=nfs4"}, "--backend"},
		{anchorEnv, []string{"--backend=mounted", "--mount-root=/nonexistent/dir"}, "--mount-root"},
		{anchorEnv, []string{"--worker-threads=0"}, "--worker-threads"},
		{anchorEnv, []string{"--kube-api-qps=0"}, "--kube-api-qps"},
		{anchorEnv, []string{"--nfs-port=70000"}, "--nfs-port"},
		{anchorEnv, []string{"--leader-election-lease-duration=1s"}, "lease-duration"},
	}
	for _, tt := range tests {
		_, err := parse(t, tt.env, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v args %v: err = %v, want one naming %s", tt.env, tt.args, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("error is not one line: %q", err)
		}
	}
}

func TestConfigVersionNeedsNothingElse(t *testing.T) {
	c, err := parse(t, nil, "--version")
	if err != nil || !c.ShowVersion {
		t.Fatalf("--version: %v", err)
	}
}

// --privileged-port takes auto, true or false after =; alone it is true; a word after it (or any
// other stray argument) is refused instead of silently ending the flags.
func TestPrivilegedPortFlag(t *testing.T) {
	for args, want := range map[string]string{"": "auto", "--privileged-port": "true", "--privileged-port=auto": "auto", "--privileged-port=false": "false", "--privileged-port=true": "true"} {
		c, err := parse(t, anchorEnv, strings.Fields(args)...)
		if err != nil || c.SourcePort.String() != want {
			t.Errorf("%q: %v %v, want %s", args, c, err, want)
		}
	}
	if _, err := parse(t, anchorEnv, "--privileged-port", "auto", "--nfs-timeout=3s"); err == nil || !strings.Contains(err.Error(), `unexpected argument "auto"`) {
		t.Errorf("a stray word after the flags: %v, want it refused", err)
	}
	if _, err := parse(t, anchorEnv, "--privileged-port=sometimes"); err == nil {
		t.Error("--privileged-port=sometimes accepted")
	}
}

// NFS_VERSION and --nfs-version choose the wire backend's version; unset is NFSv3's ""; a
// version the provisioner does not speak is refused.
func TestNFSVersionSetting(t *testing.T) {
	env := func(v string) map[string]string {
		m := map[string]string{}
		for k, val := range anchorEnv {
			m[k] = val
		}
		m["NFS_VERSION"] = v
		return m
	}
	for _, tc := range []struct {
		env  string
		args []string
		want wire.Version
	}{{"", nil, ""}, {"4.1", nil, wire.Version41}, {"4", nil, wire.Version41}, {"auto", nil, wire.VersionAuto}, {"4.1", []string{"--nfs-version=3"}, wire.Version3}} {
		c, err := parse(t, env(tc.env), tc.args...)
		if err != nil || c.NFSVersion != tc.want {
			t.Errorf("NFS_VERSION=%q %v: %v %v, want %q", tc.env, tc.args, c.NFSVersion, err, tc.want)
		}
	}
	for _, bad := range []string{"2", "4.0x"} {
		if _, err := parse(t, env(bad)); err == nil || !strings.Contains(err.Error(), "NFS_VERSION") {
			t.Errorf("NFS_VERSION=%s: %v, want it refused", bad, err)
		}
	}
}
