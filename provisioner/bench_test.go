package provisioner

import (
	"context"
	"testing"

	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

func BenchmarkParseClassOptions(b *testing.B) {
	params := map[string]string{"onDelete": "archive", "pathPattern": "${.PVC.namespace}/${.PVC.name}", "mode": "0770", "uid": "1000", "gid": "1000"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseClassOptions(params); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVolumePathDefault(b *testing.B) {
	claim := testClaim()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VolumePath("", claim, testPV); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVolumePathPattern(b *testing.B) {
	claim := testClaim()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VolumePath("${.PVC.namespace}/${.PVC.labels.app}/${.PVC.annotations.nfs.io/storage-path}", claim, testPV); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProvision is the whole Provision call on a local directory: the
// provisioner's own overhead without the network.
func BenchmarkProvision(b *testing.B) {
	f := newFixture(b)
	class := newClass(nil)
	claim := newClaim(nil)
	b.ReportAllocs()
	for b.Loop() {
		_, _, err := f.prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: class, PVName: testPV, PVC: claim})
		if err != nil {
			b.Fatal(err)
		}
	}
}
