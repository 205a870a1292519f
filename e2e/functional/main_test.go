//go:build e2e

// Package functional is the e2e suite of what users do: claims, classes, delete policies,
// ownership, path patterns, tenant isolation, expansion, capacity, the walkthrough. Its tests share
// one provisioner process (as one install serves a whole cluster), started by TestMain under the
// anchor's PROVISIONER_NAME and the ServiceAccount of deploy/rbac.yaml.
package functional

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

var (
	fw          *framework.Framework
	provisioner *framework.Process // the shared one
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	if fw, err = framework.New(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		return 1
	}
	fw.BeforeClass = requireLeadingProvisioner
	workDir, err := os.MkdirTemp("", "nfsp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		return 1
	}
	logPath := filepath.Join(workDir, "provisioner.log")
	kubeconfig, err := fw.Cluster.ServiceAccountKubeconfig(ctx, workDir)
	if err == nil {
		provisioner, err = fw.StartProvisioner(ctx, framework.ProcessOptions{
			Name: fw.Provisioner, Kubeconfig: kubeconfig, LogPath: logPath, WaitReady: true,
		})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		framework.PrintFile(logPath)
		return 1
	}
	fmt.Printf("e2e: provisioner %s running (log %s, metrics %s)\n", fw.Env.ProvisionerBin, logPath, provisioner.MetricsURL)
	code := m.Run()
	if err := provisioner.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e teardown:", err)
		code = 1
	}
	if code != 0 {
		framework.PrintFile(logPath)
	}
	return code
}

var leadership struct {
	once sync.Once
	err  error
}

// requireLeadingProvisioner fails the test unless the suite's provisioner holds the leader Lease,
// so that no other provisioner of the same name (another e2e run, make demo) is what the test
// observes. Every test that makes a class for the suite's provisioner calls it (CreateClass does).
func requireLeadingProvisioner(t *testing.T) {
	t.Helper()
	leadership.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		leadership.err = provisioner.WaitForLeadership(ctx, fw.Cluster, fw.Provisioner, 2*time.Minute)
	})
	if leadership.err != nil {
		t.Fatal(leadership.err)
	}
}
