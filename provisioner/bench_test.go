package provisioner_test

import (
	"context"
	"testing"

	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/internal/provtest"
)

// BenchmarkProvision is the whole Provision call on a local directory: the
// provisioner's own overhead without the network.
func BenchmarkProvision(b *testing.B) {
	f := provtest.New(b, provtest.Options{})
	class := provtest.Class(nil)
	claim := provtest.Claim(nil)
	b.ReportAllocs()
	for b.Loop() {
		_, _, err := f.Prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: class, PVName: provtest.PV, PVC: claim})
		if err != nil {
			b.Fatal(err)
		}
	}
}
