package testbed

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseEnvFile(t *testing.T) {
	got := parseEnvFile("# comment\nKUBECONFIG=/tmp/a\nE2E_NFS_STOP_CMD=\"TESTBED_DIR=/x stop\"\nexport Q='quoted'\nnot a line\n")
	want := map[string]string{"KUBECONFIG": "/tmp/a", "E2E_NFS_STOP_CMD": "TESTBED_DIR=/x stop", "Q": "quoted"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// TestEnvOnlyWhileRunning: the env file is read only while the named components' PID files name
// live processes of the commands they were started as.
func TestEnvOnlyWhileRunning(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "pids"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("env", "E2E_NFS_SERVER=127.0.0.1\n")
	if env := Env(dir, "self"); env != nil {
		t.Fatalf("no PID file: got %v, want nil", env)
	}
	self, err := os.ReadFile("/proc/self/cmdline")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	write("pids/self.pid", strconv.Itoa(os.Getpid()))
	write("pids/self.cmd", "some-other-command")
	if env := Env(dir, "self"); env != nil {
		t.Fatalf("PID of another command: got %v, want nil", env)
	}
	argv0, _, _ := strings.Cut(string(self), "\x00")
	write("pids/self.cmd", filepath.Base(argv0))
	if env := Env(dir, "self"); env["E2E_NFS_SERVER"] != "127.0.0.1" {
		t.Fatalf("running: got %v, want the env file's variables", env)
	}
}
