//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"
)

// serverRecoveryTimeout covers the provisioning library's retry backoff after failed attempts.
const serverRecoveryTimeout = 4 * time.Minute

// TestNFSServerDown takes the NFS server away before a claim arrives, then brings it back: the
// claim gets a Warning Event, then binds, and the provisioner process is the same throughout.
func TestNFSServerDown(t *testing.T) {
	namespace := createNamespace(t, "serverdown")
	class := createClass(t, classOptions{})
	pid := suite.provisioner.cmd.Process.Pid

	runShell(t, "stopping the NFS server", suite.env.nfsStopCommand)
	serverUp := false
	t.Cleanup(func() {
		if !serverUp {
			runShell(t, "restarting the NFS server after a failure", suite.env.nfsStartCommand)
		}
	})

	claim := createClaim(t, namespace, claimOptions{name: "data", class: class.Name})
	t.Run("Warning Event while the server is down", func(t *testing.T) {
		waitWarningEvent(t, claim, warningReason)
		assertNoVolumeForClaim(t, claim)
	})
	t.Run("provisioning is retried while the server is down", func(t *testing.T) {
		poll(t, "a second failed provisioning attempt", eventTimeout, func(ctx context.Context) (bool, error) {
			count, err := failedProvisionings(ctx, claim)
			return count >= 2, fmt.Errorf("%d failed attempts (%v)", count, err)
		})
		assertNoVolumeForClaim(t, claim)
	})
	t.Run("readyz reports not ready while the server is down", func(t *testing.T) {
		waitReadyzStatus(t, func(status int) bool { return status != http.StatusOK }, "not 200")
	})

	runShell(t, "starting the NFS server", suite.env.nfsStartCommand)
	serverUp = true

	t.Run("claim binds once the server is back", func(t *testing.T) {
		_, volume := waitClaimBoundWithin(t, namespace, claim.Name, serverRecoveryTimeout)
		assertDir(t, defaultExport().volumeDir(t, volume), dirAttrs{mode: 0o777})
	})
	t.Run("readyz reports ready again", func(t *testing.T) {
		waitReadyzStatus(t, func(status int) bool { return status == http.StatusOK }, "200")
	})
	t.Run("the provisioner was not restarted", func(t *testing.T) {
		if !suite.provisioner.running() || suite.provisioner.cmd.Process.Pid != pid {
			t.Errorf("the provisioner process %d is gone (exit: %v)", pid, suite.provisioner.exitErr)
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
	poll(t, "the provisioner's /readyz to answer "+description, time.Minute, func(ctx context.Context) (bool, error) {
		status := suite.provisioner.endpointStatus(ctx, "/readyz")
		return want(status), fmt.Errorf("status %d", status)
	})
}
