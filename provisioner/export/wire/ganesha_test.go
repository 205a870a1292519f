package wire_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/testbed"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/exporttest"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire"
)

// The Ganesha suites run when the environment says where a Ganesha (or any
// NFSv3 server with a portmapper) is, with a no_root_squash and a
// root_squash export and their backing directories on this machine:
//
//	NFSP_GANESHA_SERVER       (or E2E_NFS_SERVER)         host
//	NFSP_GANESHA_PATH         (or E2E_NFS_PATH)           no_root_squash export path to MNT
//	NFSP_GANESHA_SQUASH_PATH  (or E2E_NFS_SQUASH_PATH)    root_squash export path to MNT
//	NFSP_GANESHA_DIR          (or E2E_EXPORT_DIR)         its local directory (default: the path)
//	NFSP_GANESHA_SQUASH_DIR   (or E2E_SQUASH_EXPORT_DIR)  its local directory (default: the path)
//	NFSP_GANESHA_NFS_PORT, NFSP_GANESHA_MOUNT_PORT        skip the portmapper (optional)
//
// When none is set, the test bed's env file is read (see env).
// The root_squash export's root must be owned by a non-root uid (the test
// bed uses 2000:2000); the suite acts as that owner. They are skipped
// otherwise, or fail when NFSP_REQUIRE_GANESHA=1.

type ganeshaExport struct {
	server, path, dir string
	opts              wire.Options
}

// env returns the first of names that is set in the environment or, when
// none is, in the test bed's env file ($TESTBED_DIR/env, by default
// /tmp/nfsp-testbed/env), so that a plain `go test ./...` (and `make
// test`) uses the test bed's Ganesha when the bed is up.
func env(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	bed := testbedEnv()
	for _, n := range names {
		if v := bed[n]; v != "" {
			return v
		}
	}
	return ""
}

// testbedEnv is the bed's env file while its Ganesha and rpcbind run.
var testbedEnv = sync.OnceValue(func() map[string]string {
	return testbed.Env(testbed.Dir(), "ganesha", "rpcbind")
})

func ganesha(t testing.TB, squash bool) ganeshaExport {
	t.Helper()
	g := ganeshaExport{server: env("NFSP_GANESHA_SERVER", "E2E_NFS_SERVER")}
	if squash {
		g.path = env("NFSP_GANESHA_SQUASH_PATH", "E2E_NFS_SQUASH_PATH")
		g.dir = env("NFSP_GANESHA_SQUASH_DIR", "E2E_SQUASH_EXPORT_DIR")
	} else {
		g.path = env("NFSP_GANESHA_PATH", "E2E_NFS_PATH")
		g.dir = env("NFSP_GANESHA_DIR", "E2E_EXPORT_DIR")
	}
	if g.dir == "" {
		g.dir = g.path
	}
	if g.server == "" || g.path == "" {
		msg := "no Ganesha: the test bed is not running (make testbed-up; its env file alone is not taken for a running bed), or set NFSP_GANESHA_SERVER, NFSP_GANESHA_PATH and NFSP_GANESHA_SQUASH_PATH"
		if os.Getenv("NFSP_REQUIRE_GANESHA") == "1" {
			t.Fatal(msg + ", required by NFSP_REQUIRE_GANESHA=1")
		}
		t.Skip(msg)
	}
	if _, err := os.Stat(g.dir); err != nil {
		t.Fatalf("backing directory of %s:%s: %v (set NFSP_GANESHA_DIR / NFSP_GANESHA_SQUASH_DIR)", g.server, g.path, err)
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"NFSP_GANESHA_NFS_PORT", &g.opts.NFSPort}, {"NFSP_GANESHA_MOUNT_PORT", &g.opts.MountPort}} {
		if v := os.Getenv(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s=%q: %v", p.name, v, err)
			}
			*p.dst = n
		}
	}
	return g
}

// owner is the owner of the export's backing directory.
func (g ganeshaExport) owner(t testing.TB) export.DirAttrs {
	t.Helper()
	fi, err := os.Stat(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return export.DirAttrs{UID: st.Uid, GID: st.Gid}
}

// populate writes a file through the backing directory, owned like the
// directory it is written to (as if that directory's owner had made it).
func (g ganeshaExport) populate(t testing.TB, path string, data []byte) {
	t.Helper()
	full := filepath.Join(g.dir, filepath.FromSlash(path))
	if err := os.WriteFile(full, data, 0o644); err != nil {
		t.Fatalf("populate %s: %v", path, err)
	}
	fi, err := os.Stat(filepath.Dir(full))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if err := os.Chown(full, int(st.Uid), int(st.Gid)); err != nil {
		t.Fatal(err)
	}
}

func (g ganeshaExport) open(t testing.TB, o wire.Options) *wire.FS {
	t.Helper()
	o.NFSPort, o.MountPort = g.opts.NFSPort, g.opts.MountPort
	return wire.OpenForTest(t, o, g.server, g.path)
}

// eachVersion runs a Ganesha suite over NFSv3 and over NFSv4.1 (the bed's Ganesha serves both
// on its exports, whose pseudo-filesystem paths are their real paths), or over the versions
// NFSP_GANESHA_VERSIONS lists ("3", "4.1", comma-separated) for a server that has only some.
func eachVersion(t *testing.T, run func(t *testing.T, v wire.Version)) {
	list := os.Getenv("NFSP_GANESHA_VERSIONS")
	if list == "" {
		list = "3,4.1"
	}
	for _, s := range strings.Split(list, ",") {
		v, err := wire.ParseVersion(strings.TrimSpace(s), wire.Version3)
		if err != nil {
			t.Fatalf("NFSP_GANESHA_VERSIONS: %v", err)
		}
		t.Run("nfs"+string(v), func(t *testing.T) { run(t, v) })
	}
}

func TestContractGanesha(t *testing.T) {
	eachVersion(t, func(t *testing.T, v wire.Version) {
		g := ganesha(t, false)
		fsys := g.open(t, wire.Options{ReaddirBytes: 4096, Version: v})
		if fsys.Version() != v {
			t.Fatalf("opened over NFS %s, asked for %s", fsys.Version(), v)
		}
		exporttest.Run(t, fsys, g.rootContract())
	})
}

// rootContract is the contract's options for a no_root_squash export whose backing directory
// this test can reach.
func (g ganeshaExport) rootContract() exporttest.Options {
	return exporttest.Options{
		Owner:             export.DirAttrs{UID: 0, GID: 0},
		ChecksCredentials: true,
		Populate:          func(t *testing.T, p string, data []byte) { g.populate(t, p, data) },
		Symlink:           exporttest.LocalSymlink(g.dir),
		Swap:              exporttest.LocalSwap(g.dir),
		Statfs:            exporttest.LocalStatfs(g.dir),
	}
}

func TestContractGaneshaRootSquash(t *testing.T) {
	eachVersion(t, func(t *testing.T, v wire.Version) {
		g := ganesha(t, true)
		owner := g.owner(t)
		if owner.UID == 0 {
			t.Fatalf("the root_squash export's root %s is owned by root: chown it to a non-root uid (the test bed uses 2000:2000)", g.dir)
		}
		fsys := g.open(t, wire.Options{ReaddirBytes: 4096, Version: v})
		exporttest.Run(t, fsys, exporttest.Options{
			Owner:             owner,
			ChecksCredentials: true,
			Squashed:          true,
			Populate:          func(t *testing.T, p string, data []byte) { g.populate(t, p, data) },
			Symlink:           exporttest.LocalSymlink(g.dir),
			Swap:              exporttest.LocalSwap(g.dir),
		})
	})
}
