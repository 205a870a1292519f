//go:build e2e

// Package framework is what the e2e suites (e2e/functional, e2e/fault, e2e/bench) share: the
// environment they run in, the cluster's admin clients, the provisioner run as a process under its
// ServiceAccount, object builders, assertions on the export's backing directory, metrics, polling
// and pacing. A suite's TestMain makes one Framework; its tests call methods on it.
package framework

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/testbed"
)

// DefaultProvisionerName is the anchor project's PROVISIONER_NAME, which the functional suite's
// provisioner uses unless E2E_PROVISIONER_NAME says otherwise.
const DefaultProvisionerName = "k8s-sigs.io/nfs-subdir-external-provisioner"

// Env is everything the suites need from outside, read once from E2E_* variables and KUBECONFIG.
// A variable not set is taken from the local test bed's env file while the bed runs, so
// `go test -tags e2e ./e2e/...` works on a running bed without sourcing it; any other cluster
// (kind) sets them itself.
type Env struct {
	Kubeconfig      string // admin kubeconfig: the suites' own client, never the provisioner's
	ProvisionerBin  string // the binary under test
	ProvisionerName string // PROVISIONER_NAME of the functional suite's provisioner
	NFSServer       string // address the provisioner and the PVs use
	NFSPath         string // MOUNT path of the no_root_squash export
	SquashNFSPath   string // MOUNT path of the root_squash export
	ExportDir       string // local directory backing NFSPath, to check results without NFS
	SquashExportDir string // local directory backing SquashNFSPath
	SquashExportUID uint32 // owner of the root_squash export's root
	SquashExportGID uint32
	NFSStopCommand  string // shell command that takes the NFS server away
	NFSStartCommand string // shell command that brings it back
	TestbedDir      string // the local test bed's directory; empty elsewhere (kind)
	TestbedLogs     string // directory of the test bed's logs, for failure reports
	RepoRoot        string // for deploy/, charts/ and deploy/examples/
	// ClassNFSVersion, when set (E2E_CLASS_NFS_VERSION: "3", "4.1"), is the nfsVersion parameter
	// of every class a test makes for the suite's provisioner that names no version itself: the
	// functional suite runs once per version (make test-e2e).
	ClassNFSVersion string
}

// LoadEnv reads the environment and checks that the binary and the backing directories exist.
func LoadEnv() (Env, error) {
	bed := testbed.Env(testbed.Dir(), "kube-apiserver", "ganesha", "rpcbind")
	var missing []string
	lookup := func(name string) string {
		if value := os.Getenv(name); value != "" {
			return value
		}
		return bed[name]
	}
	get := func(name string) string {
		value := lookup(name)
		if value == "" {
			missing = append(missing, name)
		}
		return value
	}
	env := Env{
		Kubeconfig:      get("KUBECONFIG"),
		ProvisionerBin:  get("E2E_PROVISIONER_BIN"),
		ProvisionerName: lookup("E2E_PROVISIONER_NAME"),
		NFSServer:       get("E2E_NFS_SERVER"),
		NFSPath:         get("E2E_NFS_PATH"),
		SquashNFSPath:   get("E2E_NFS_SQUASH_PATH"),
		ExportDir:       get("E2E_EXPORT_DIR"),
		SquashExportDir: get("E2E_SQUASH_EXPORT_DIR"),
		NFSStopCommand:  get("E2E_NFS_STOP_CMD"),
		NFSStartCommand: get("E2E_NFS_START_CMD"),
		TestbedDir:      lookup("E2E_TESTBED_DIR"),
		TestbedLogs:     lookup("E2E_TESTBED_LOGS"),
		RepoRoot:        lookup("E2E_REPO_ROOT"),
		ClassNFSVersion: os.Getenv("E2E_CLASS_NFS_VERSION"),
	}
	uid, gid := get("E2E_SQUASH_EXPORT_UID"), get("E2E_SQUASH_EXPORT_GID")
	if len(missing) > 0 {
		return Env{}, fmt.Errorf("environment variables not set: %s (start the local test bed with make testbed-up, or set them for your cluster)",
			strings.Join(missing, ", "))
	}
	if env.ProvisionerName == "" {
		env.ProvisionerName = DefaultProvisionerName
	}
	var err error
	if env.SquashExportUID, err = parseID("E2E_SQUASH_EXPORT_UID", uid); err != nil {
		return Env{}, err
	}
	if env.SquashExportGID, err = parseID("E2E_SQUASH_EXPORT_GID", gid); err != nil {
		return Env{}, err
	}
	if env.RepoRoot == "" {
		if env.RepoRoot, err = repoRoot(); err != nil {
			return Env{}, err
		}
	}
	if _, err := os.Stat(env.ProvisionerBin); err != nil {
		return Env{}, fmt.Errorf("E2E_PROVISIONER_BIN: %w (run make build)", err)
	}
	for name, dir := range map[string]string{"E2E_EXPORT_DIR": env.ExportDir, "E2E_SQUASH_EXPORT_DIR": env.SquashExportDir} {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			return Env{}, fmt.Errorf("%s=%s is not a directory: %v", name, dir, err)
		}
	}
	return env, nil
}

func parseID(name, value string) (uint32, error) {
	id, err := strconv.ParseUint(value, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a numeric id: %w", name, value, err)
	}
	return uint32(id), nil
}

// repoRoot is the nearest directory above the working directory (go test runs in the suite's
// package directory) that holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: set E2E_REPO_ROOT")
		}
		dir = parent
	}
}
