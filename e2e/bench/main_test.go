//go:build e2e

// Package bench is the provisioning benchmark (make bench): claims per second, latency, CPU,
// memory and NFS round trips of provisioner instances of its own, reported in a table and never
// asserted. It runs only with E2E_BENCH=1.
package bench

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
	if os.Getenv("E2E_BENCH") != "1" {
		fmt.Println("provisioning benchmark: skipped unless E2E_BENCH=1 (run it with make bench)")
		os.Exit(0)
	}
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
