//go:build e2e

package functional

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// serverRecoveryTimeout covers the provisioning library's retry backoff after failed attempts.
const serverRecoveryTimeout = 4 * time.Minute

// TestNFSServerDown takes the NFS server away before a claim arrives, then brings it back: the
// claim gets a Warning Event, then binds, and the provisioner process is the same throughout.
func TestNFSServerDown(t *testing.T) {
	namespace := fw.CreateNamespace(t, "serverdown")
	class := fw.CreateClass(t, framework.ClassOptions{})
	pid := provisioner.Cmd.Process.Pid

	runShell(t, "stopping the NFS server", fw.Env.NFSStopCommand)
	serverUp := false
	t.Cleanup(func() {
		if !serverUp {
			runShell(t, "restarting the NFS server after a failure", fw.Env.NFSStartCommand)
		}
	})

	claim := fw.CreateClaim(t, namespace, framework.ClaimOptions{Name: "data", Class: class.Name})
	t.Run("Warning Event while the server is down", func(t *testing.T) {
		fw.WaitWarningEvent(t, claim, framework.FailureReason)
		fw.AssertNoVolumeForClaim(t, claim)
	})
	t.Run("provisioning is retried while the server is down", func(t *testing.T) {
		framework.Poll(t, "a second failed provisioning attempt", framework.EventTimeout, func(ctx context.Context) (bool, error) {
			count, err := fw.FailedProvisionings(ctx, claim)
			return count >= 2, fmt.Errorf("%d failed attempts (%v)", count, err)
		})
		fw.AssertNoVolumeForClaim(t, claim)
	})
	t.Run("readyz reports not ready while the server is down", func(t *testing.T) {
		waitReadyzStatus(t, func(status int) bool { return status != http.StatusOK }, "not 200")
	})

	runShell(t, "starting the NFS server", fw.Env.NFSStartCommand)
	serverUp = true

	t.Run("claim binds once the server is back", func(t *testing.T) {
		_, volume := fw.WaitClaimBoundWithin(t, namespace, claim.Name, serverRecoveryTimeout)
		framework.AssertDir(t, fw.DefaultExport().VolumeDir(t, volume), framework.DirAttrs{Mode: 0o777})
	})
	t.Run("readyz reports ready again", func(t *testing.T) {
		waitReadyzStatus(t, func(status int) bool { return status == http.StatusOK }, "200")
	})
	t.Run("the provisioner was not restarted", func(t *testing.T) {
		if !provisioner.Running() || provisioner.Cmd.Process.Pid != pid {
			t.Errorf("the provisioner process %d is gone (exit: %v)", pid, provisioner.ExitErr)
		}
	})
}

func runShell(t *testing.T, what, command string) {
	t.Helper()
	output, err := exec.Command("/bin/sh", "-c", command).CombinedOutput()
	if err != nil {
		t.Fatalf("%s (%s): %v\n%s", what, command, err, output)
	}
}

func waitReadyzStatus(t *testing.T, want func(int) bool, description string) {
	t.Helper()
	framework.Poll(t, "the provisioner's /readyz to answer "+description, time.Minute, func(ctx context.Context) (bool, error) {
		status := provisioner.EndpointStatus(ctx, "/readyz")
		return want(status), fmt.Errorf("status %d", status)
	})
}
