//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// testEnv is everything the suite needs from outside, read once from E2E_* variables and KUBECONFIG.
// The local test bed writes them to $TESTBED_DIR/env; any other cluster (kind) sets them itself.
type testEnv struct {
	kubeconfig      string // admin kubeconfig: the suite's own client, never the provisioner's
	provisionerBin  string // the binary under test
	nfsServer       string // address the provisioner and the PVs use
	nfsPath         string // MOUNT path of the no_root_squash export
	squashNFSPath   string // MOUNT path of the root_squash export
	exportDir       string // local directory backing nfsPath, to check results without NFS
	squashExportDir string // local directory backing squashNFSPath
	squashExportUID uint32 // owner of the root_squash export's root
	squashExportGID uint32
	nfsStopCommand  string // shell command that takes the NFS server away
	nfsStartCommand string // shell command that brings it back
	testbedLogs     string // directory of the test bed's logs, for failure reports
	repoRoot        string // for deploy/ and deploy/examples/
}

func loadTestEnv() (testEnv, error) {
	var missing []string
	get := func(name string) string {
		value := os.Getenv(name)
		if value == "" {
			missing = append(missing, name)
		}
		return value
	}
	env := testEnv{
		kubeconfig:      get("KUBECONFIG"),
		provisionerBin:  get("E2E_PROVISIONER_BIN"),
		nfsServer:       get("E2E_NFS_SERVER"),
		nfsPath:         get("E2E_NFS_PATH"),
		squashNFSPath:   get("E2E_NFS_SQUASH_PATH"),
		exportDir:       get("E2E_EXPORT_DIR"),
		squashExportDir: get("E2E_SQUASH_EXPORT_DIR"),
		nfsStopCommand:  get("E2E_NFS_STOP_CMD"),
		nfsStartCommand: get("E2E_NFS_START_CMD"),
		testbedLogs:     os.Getenv("E2E_TESTBED_LOGS"),
		repoRoot:        os.Getenv("E2E_REPO_ROOT"),
	}
	uid, gid := get("E2E_SQUASH_EXPORT_UID"), get("E2E_SQUASH_EXPORT_GID")
	if len(missing) > 0 {
		return testEnv{}, fmt.Errorf("environment variables not set: %s (on the local test bed: set -a; source $TESTBED_DIR/env)",
			strings.Join(missing, ", "))
	}
	var err error
	if env.squashExportUID, err = parseID("E2E_SQUASH_EXPORT_UID", uid); err != nil {
		return testEnv{}, err
	}
	if env.squashExportGID, err = parseID("E2E_SQUASH_EXPORT_GID", gid); err != nil {
		return testEnv{}, err
	}
	if env.repoRoot == "" {
		// go test runs in the package directory, e2e/.
		env.repoRoot = ".."
	}
	if _, err := os.Stat(env.provisionerBin); err != nil {
		return testEnv{}, fmt.Errorf("E2E_PROVISIONER_BIN: %w (run make build)", err)
	}
	for name, dir := range map[string]string{"E2E_EXPORT_DIR": env.exportDir, "E2E_SQUASH_EXPORT_DIR": env.squashExportDir} {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			return testEnv{}, fmt.Errorf("%s=%s is not a directory: %v", name, dir, err)
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
