//go:build e2e

// Package fault is the e2e suite of failures: the API server, the leader, the NFS server and the
// provisioner killed, stalled or unreachable during bursts of claims. Each case runs provisioner
// instances of its own and reports the same figures (FAULT-FIGURES lines): claims, bound, orphan
// directories, duplicate PVs, panics, restarts, recovery time.
package fault

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nfs-subdir/provisioner/e2e/framework"
)

var fw *framework.Framework

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	var err error
	fw, err = framework.New(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
