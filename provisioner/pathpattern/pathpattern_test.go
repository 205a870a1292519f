package pathpattern

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testClaim() *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{
		Namespace: "default",
		Name:      "redis-100m-pvc-redis-pv-sts-0",
		Labels:    map[string]string{"app": "redis", "tier": ""},
		Annotations: map[string]string{
			"nfs.io/storage-path": "team-a/redis",
			"dots":                "..",
			"dot":                 ".",
			"up":                  "../../etc",
			"abs":                 "/etc",
			"nul":                 "a\x00b",
			"newline":             "a\nb",
			"slashes":             "a//b/./c/",
			"long":                strings.Repeat("x", 256),
			"mid-dots":            "a/../b",
			"dotdotname":          "..hidden",
			"utf8":                "données",
		},
	}}
}

func TestExpand(t *testing.T) {
	const pv = "pvc-3f6c1a52-7d1e-4d7e-9e0b-2b1f5c9a0d11"
	def := "default-redis-100m-pvc-redis-pv-sts-0-" + pv
	tests := []struct {
		pattern string
		want    string
		wantErr string
	}{
		{"", def, ""},
		{"${.PVC.namespace}/${.PVC.name}", "default/redis-100m-pvc-redis-pv-sts-0", ""},
		{"${.PVC.namespace}-${.PVC.labels.app}", "default-redis", ""},
		{"${ .PVC.name }", "redis-100m-pvc-redis-pv-sts-0", ""},
		{"${.PVC.annotations.nfs.io/storage-path}", "team-a/redis", ""},
		{"static/${.PV.name}", "static/" + pv, ""},
		{"${.PVC.annotations.slashes}", "a/b/c", ""},
		{"${.PVC.annotations.dotdotname}", "..hidden", ""},
		{"${.PVC.annotations.utf8}", "données", ""},
		{"plain", "plain", ""},
		// Empty expansions fall back to the default name, never the export root.
		{"${.PVC.labels.missing}", def, ""},
		{"${.PVC.labels.tier}", def, ""},
		{"${.PVC.annotations.missing}${.PVC.labels.missing}", def, ""},
		// Traversal and other tricks are refused.
		{"${.PVC.annotations.dots}", "", `".."`},
		{"${.PVC.annotations.dot}", "", "export root"},
		{"${.PVC.annotations.up}", "", `".."`},
		{"x/${.PVC.annotations.up}", "", `".."`},
		{"${.PVC.annotations.mid-dots}", "", `".."`},
		{"${.PVC.annotations.abs}", "", "absolute"},
		{"/${.PVC.name}", "", "absolute"},
		{"${.PVC.annotations.nul}", "", "NUL"},
		{"${.PVC.annotations.newline}", "", "control"},
		{"${.PVC.annotations.long}", "", "over the 255-byte limit"},
		{"${.PVC.labels.missing}/", "", "absolute"},
		{"${.PVC.labels.missing}/x", "", "absolute"},
		{"./", "", "export root"},
		{"${.PVC.bogus}", "", "unknown reference"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			got, err := Expand(tt.pattern, testClaim(), pv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Expand(%q) = %q, %v; want error containing %q", tt.pattern, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Expand(%q) = %q, %v; want %q", tt.pattern, got, err, tt.want)
			}
		})
	}
}

func TestDefaultDirNameShortening(t *testing.T) {
	pv := "pvc-3f6c1a52-7d1e-4d7e-9e0b-2b1f5c9a0d11"
	ns := strings.Repeat("n", 63)
	long := strings.Repeat("c", 253)
	a := DefaultDirName(ns, long, pv)
	b := DefaultDirName(ns, long, "pvc-00000000-7d1e-4d7e-9e0b-2b1f5c9a0d11")
	if len(a) > 255 || len(b) > 255 {
		t.Fatalf("names over 255 bytes: %d, %d", len(a), len(b))
	}
	if a == b {
		t.Fatalf("two claims map to one directory: %q", a)
	}
	if a != DefaultDirName(ns, long, pv) {
		t.Fatal("shortening is not stable")
	}
	if !strings.HasPrefix(a, ns+"-ccc") {
		t.Errorf("shortened name lost its readable prefix: %q", a)
	}
	if got := DefaultDirName("default", "data", pv); got != "default-data-"+pv {
		t.Errorf("short names must not change: %q", got)
	}
	// Multi-byte characters are not split.
	u := ShortenName(strings.Repeat("é", 200))
	if !strings.HasPrefix(u, "é") || len(u) > 255 || !utf8Valid(u) {
		t.Errorf("bad UTF-8 shortening: %q", u)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestSafeRelPath(t *testing.T) {
	good := map[string]string{"a": "a", "a/b": "a/b", "a//b": "a/b", "./a": "a", "a/.": "a", "a/": "a", "...": "..."}
	for in, want := range good {
		if got, err := SafeRelPath(in); err != nil || got != want {
			t.Errorf("SafeRelPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "/", "/a", "..", "a/..", "a/../b", "../a", "a\x00", "a\rb", "a\x7f", strings.Repeat("a", 256), strings.Repeat("abcdefgh/", 300)} {
		if got, err := SafeRelPath(in); err == nil {
			t.Errorf("SafeRelPath(%q) = %q, want an error", in, got)
		}
	}
}
