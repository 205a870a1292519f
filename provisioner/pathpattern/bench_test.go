package pathpattern

import "testing"

const benchPV = "pvc-0b6a3c1e-2f0d-4c55-9a53-6d3c8e1f7a10"

func BenchmarkExpandDefault(b *testing.B) {
	claim := testClaim()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Expand("", claim, benchPV); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExpandPattern(b *testing.B) {
	claim := testClaim()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Expand("${.PVC.namespace}/${.PVC.labels.app}/${.PVC.annotations.nfs.io/storage-path}", claim, benchPV); err != nil {
			b.Fatal(err)
		}
	}
}
