package volume

import (
	"strings"
	"testing"
)

func TestArchiveName(t *testing.T) {
	tests := []struct {
		dir  string
		n    int
		want string
	}{
		{"default-data-pvc-1", 0, "archived-default-data-pvc-1"},
		{"default-data-pvc-1", 1, "archived-default-data-pvc-1-2"},
		{"default-data-pvc-1", 9, "archived-default-data-pvc-1-10"},
		{"team/a/vol", 0, "team/a/archived-vol"},
		{"team/a/vol", 2, "team/a/archived-vol-3"},
	}
	for _, tt := range tests {
		if got := ArchiveName(tt.dir, tt.n); got != tt.want {
			t.Errorf("ArchiveName(%q, %d) = %q, want %q", tt.dir, tt.n, got, tt.want)
		}
	}
	long := strings.Repeat("v", 250)
	seen := map[string]bool{}
	for n := 0; n < 5; n++ {
		name := ArchiveName(long, n)
		if len(name) > 255 || seen[name] || !strings.HasPrefix(name, "archived-vvv") {
			t.Errorf("ArchiveName(long, %d) = %q (len %d, seen %v)", n, name, len(name), seen[name])
		}
		seen[name] = true
	}
}
