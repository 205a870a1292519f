//go:build e2e

// Package bench is the provisioning benchmark (make bench): claims per second, latency, CPU,
// memory and NFS round trips of provisioner instances of its own, reported in a table and never
// asserted. It runs only with E2E_BENCH=1.
package bench

import (
	"fmt"
	"os"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

var fw *framework.Framework

func TestMain(m *testing.M) {
	if os.Getenv("E2E_BENCH") != "1" {
		fmt.Println("provisioning benchmark: skipped unless E2E_BENCH=1 (run it with make bench)")
		os.Exit(0)
	}
	fw = framework.MustNew()
	os.Exit(m.Run())
}
