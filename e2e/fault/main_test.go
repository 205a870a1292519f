//go:build e2e

// Package fault is the e2e suite of failures: the API server, the leader, the NFS server and the
// provisioner killed, stalled or unreachable during bursts of claims. Each case runs provisioner
// instances of its own and reports the same figures (FAULT-FIGURES lines): claims, bound, orphan
// directories, duplicate PVs, panics, restarts, recovery time.
package fault

import (
	"os"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

var fw *framework.Framework

func TestMain(m *testing.M) {
	fw = framework.MustNew()
	os.Exit(m.Run())
}
