//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
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
	suite.provisioner, err = startProvisioner(ctx, env, kubeconfig, logPath)
	return err
}

var leadership struct {
	once sync.Once
	err  error
}

// requireLeadingProvisioner fails the test unless the suite's provisioner holds the leader Lease,
// so that no other provisioner of the same name (another e2e run, make demo) is what the test
// observes. Every test that creates objects for provisionerName calls it (createClass does);
// tests that run their own provisioners under other names do not wait for it.
func requireLeadingProvisioner(t *testing.T) {
	t.Helper()
	leadership.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		leadership.err = suite.provisioner.waitForLeadership(ctx, suite.cluster, 2*time.Minute)
	})
	if leadership.err != nil {
		t.Fatal(leadership.err)
	}
}

func printFile(path string) {
	content, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot read %s: %v\n", path, err)
		return
	}
	fmt.Fprintf(os.Stderr, "\n========== %s ==========\n%s\n========== end of %s ==========\n", path, content, path)
}
