// Package testbed reads the state of the local test bed (e2e/testbed/up.sh) for the tests that use
// it: the variables its env file sets, and whether its processes really run.
//
// The env file outlives the bed (make testbed-down leaves it), so a test takes it as a description
// of a running bed only while the bed's processes are alive: Env returns nothing otherwise.
package testbed

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultDir is where up.sh puts the bed unless TESTBED_DIR says otherwise.
const DefaultDir = "/tmp/nfsp-testbed"

// Dir is $TESTBED_DIR, or DefaultDir.
func Dir() string {
	if dir := os.Getenv("TESTBED_DIR"); dir != "" {
		return dir
	}
	return DefaultDir
}

// Running reports whether the bed component name (ganesha, rpcbind, kube-apiserver, ...) runs: its
// PID file names a live process whose command line holds what it was started as.
func Running(dir, name string) bool {
	pid, err := os.ReadFile(filepath.Join(dir, "pids", name+".pid"))
	if err != nil {
		return false
	}
	want, err := os.ReadFile(filepath.Join(dir, "pids", name+".cmd"))
	if err != nil || len(strings.TrimSpace(string(want))) == 0 {
		return false
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(string(pid)), "cmdline"))
	return err == nil && strings.Contains(strings.ReplaceAll(string(cmdline), "\x00", " "), strings.TrimSpace(string(want)))
}

// Env is the variables of the bed's env file when every one of components runs, nil otherwise
// (no bed, a stopped bed, or an unreadable file).
func Env(dir string, components ...string) map[string]string {
	for _, name := range components {
		if !Running(dir, name) {
			return nil
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		return nil
	}
	return parseEnvFile(string(data))
}

// parseEnvFile reads the NAME=value lines up.sh writes (values optionally double- or
// single-quoted); comments and other lines are skipped.
func parseEnvFile(text string) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		key, value, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(key, "#") {
			continue
		}
		if unquoted, err := strconv.Unquote(value); err == nil {
			value = unquoted
		} else {
			value = strings.Trim(value, "'")
		}
		vars[strings.TrimPrefix(key, "export ")] = value
	}
	return vars
}
