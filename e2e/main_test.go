//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// suite is the state TestMain sets up for every test: the environment, the admin clients, and the
// one provisioner process all tests share (as one install serves a whole cluster).
var suite struct {
	env         testEnv
	cluster     *cluster
	provisioner *provisionerProcess
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	env, err := loadTestEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		return 1
	}
	suite.env = env
	workDir, err := os.MkdirTemp("", "nfsp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		return 1
	}
	logPath := filepath.Join(workDir, "provisioner.log")
	if err := setUp(env, workDir, logPath); err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		if suite.provisioner != nil {
			suite.provisioner.stop()
		}
		printFile(logPath)
		return 1
	}
	fmt.Printf("e2e: provisioner %s running (log %s, metrics %s)\n", env.provisionerBin, logPath, suite.provisioner.metricsURL)
	code := m.Run()
	if err := suite.provisioner.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e teardown:", err)
		code = 1
	}
	if code != 0 {
		printFile(logPath)
	}
	return code
}

// setUp installs the provisioner's RBAC from deploy/, and starts the provisioner with a token of
// its ServiceAccount.
func setUp(env testEnv, workDir, logPath string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	if suite.cluster, err = newCluster(env.kubeconfig); err != nil {
		return err
	}
	rbac := filepath.Join(env.repoRoot, "deploy", "rbac.yaml")
	if _, err := suite.cluster.applyManifestFile(ctx, rbac, provisionerNamespace); err != nil {
		return fmt.Errorf("installing the provisioner's RBAC: %w", err)
	}
	kubeconfig, err := suite.cluster.writeServiceAccountKubeconfig(ctx, workDir)
	if err != nil {
		return err
	}
	if suite.provisioner, err = startProvisioner(ctx, env, kubeconfig, logPath); err != nil {
		return err
	}
	return suite.provisioner.waitForLeadership(ctx, suite.cluster, 2*time.Minute)
}

func printFile(path string) {
	content, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot read %s: %v\n", path, err)
		return
	}
	fmt.Fprintf(os.Stderr, "\n========== %s ==========\n%s\n========== end of %s ==========\n", path, content, path)
}
