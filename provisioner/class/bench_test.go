package class

import "testing"

func BenchmarkParse(b *testing.B) {
	params := map[string]string{"onDelete": "archive", "pathPattern": "${.PVC.namespace}/${.PVC.name}", "mode": "0770", "uid": "1000", "gid": "1000"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(params); err != nil {
			b.Fatal(err)
		}
	}
}
