package main

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Debian's own redis-server, put in an image by its ELF headers alone, runs from that image's
// root file system: every library and the loader came along. Needs root (chroot) and the
// redis-server package, which make test's package list installs.
func TestFilesImageRuns(t *testing.T) {
	if _, err := os.Stat("/usr/bin/redis-server"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("NFSP_REQUIRE_IMAGE") != "" {
			t.Fatalf("needs root and /usr/bin/redis-server (make packages): %v", err)
		}
		t.Skip("needs root and Debian's redis-server")
	}
	spec := FilesSpec{Name: "nfsp.local/redis:test", Files: []string{"/usr/bin/redis-server"}, Dirs: []string{"/data", "/tmp"}, Created: time.Unix(0, 0)}
	files, err := spec.Closure()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/usr/bin/redis-server", "/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6"} {
		if !slices.Contains(files, want) {
			t.Errorf("closure %v lacks %s", files, want)
		}
	}
	img, err := FilesImage(spec)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %v (%d)", err, len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	root := t.TempDir()
	extract(t, rc, root)
	out, err := exec.Command("chroot", root, "/usr/bin/redis-server", "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Redis server v=") {
		t.Fatalf("redis-server from the image's root: %v\n%s", err, out)
	}
	if st, err := os.Stat(filepath.Join(root, "tmp")); err != nil || st.Mode()&os.ModeSticky == 0 {
		t.Errorf("/tmp in the image: %v %v, want a sticky directory", st, err)
	}
}

// A static binary needs nothing else; symbolic links are links.
func TestFilesImageStatic(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		if os.Getenv("NFSP_REQUIRE_IMAGE") != "" {
			t.Fatalf("needs busybox-static (make packages): %v", err)
		}
		t.Skip("needs Debian's busybox-static")
	}
	spec := FilesSpec{Files: []string{"/bin/busybox"}, Links: []string{"/bin/sh=busybox"}}
	files, err := spec.Closure()
	if err != nil || !slices.Equal(files, []string{"/bin/busybox"}) {
		t.Fatalf("closure of a static binary: %v %v", files, err)
	}
	layer, err := spec.layer(files)
	if err != nil {
		t.Fatal(err)
	}
	r := tar.NewReader(strings.NewReader(string(layer)))
	var names []string
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "bin/sh" && (h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox") {
			t.Errorf("bin/sh: type %c → %q, want a link to busybox", h.Typeflag, h.Linkname)
		}
	}
	if !slices.Equal(names, []string{"bin/", "bin/busybox", "bin/sh"}) {
		t.Errorf("layer entries %v", names)
	}
}

func extract(t *testing.T, r io.Reader, root string) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(root, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, os.FileMode(h.Mode&0o777)|modeBits(h.Mode)); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(target, os.FileMode(h.Mode&0o777)|modeBits(h.Mode)); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(target, data, os.FileMode(h.Mode&0o777)); err != nil {
				t.Fatal(err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, target); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func modeBits(m int64) os.FileMode {
	if m&0o1000 != 0 {
		return os.ModeSticky
	}
	return 0
}
