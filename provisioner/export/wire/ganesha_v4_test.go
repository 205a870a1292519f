package wire_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/exporttest"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire"
)

// v4Only is the bed's export served over NFSv4 alone, by a pseudo-filesystem path that is not
// its real one (as on EFS and Azure Files): NFSP_GANESHA_V4_PATH (or E2E_NFS_V4_PATH) and its
// local directory NFSP_GANESHA_V4_DIR (or E2E_V4_EXPORT_DIR).
func v4Only(t *testing.T) ganeshaExport {
	t.Helper()
	g := ganesha(t, false)
	g.path = env("NFSP_GANESHA_V4_PATH", "E2E_NFS_V4_PATH")
	g.dir = env("NFSP_GANESHA_V4_DIR", "E2E_V4_EXPORT_DIR")
	if g.path == "" || g.dir == "" {
		msg := "no NFSv4-only export: the test bed is older than this test, or set NFSP_GANESHA_V4_PATH and NFSP_GANESHA_V4_DIR"
		if os.Getenv("NFSP_REQUIRE_GANESHA") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return g
}

func TestContractGaneshaV4Only(t *testing.T) {
	g := v4Only(t)
	v3 := wire.NewOpener(wire.Options{Version: wire.Version3, NFSPort: g.opts.NFSPort, MountPort: g.opts.MountPort, Timeout: 5 * time.Second})
	defer v3.Close()
	if _, err := v3.Open(context.Background(), g.server, g.path); err == nil {
		t.Fatalf("%s:%s opened over NFSv3: the export is not v4-only", g.server, g.path)
	}
	fsys := g.open(t, wire.Options{ReaddirBytes: 4096, Version: wire.VersionAuto})
	if fsys.Version() != wire.Version41 {
		t.Fatalf("auto chose NFS %s for a v4-only export", fsys.Version())
	}
	exporttest.Run(t, fsys, g.rootContract())
}

// TestGaneshaV4IndependentClient has libnfs (Debian's libnfs-utils, its own NFSv4 client,
// nothing of ours) read back what the NFSv4.1 client made: a directory's owner and mode, a
// file's owner, mode and contents.
func TestGaneshaV4IndependentClient(t *testing.T) {
	g := v4Only(t)
	if _, err := exec.LookPath("nfs-ls"); err != nil {
		t.Fatalf("nfs-ls (Debian's libnfs-utils, installed by e2e/testbed/packages.sh): %v", err)
	}
	fsys := g.open(t, wire.Options{Version: wire.Version41})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := fmt.Sprintf("indep-%d", time.Now().UnixNano())
	t.Cleanup(func() { _ = fsys.RemoveAll(context.Background(), dir, nil) })
	if err := fsys.MkdirAll(ctx, dir+"/vol", export.DirAttrs{UID: 2000, GID: 2001, Mode: 0o750}); err != nil {
		t.Fatal(err)
	}
	tr := fsys.Tree()
	node, _, err := tr.OpenDir(ctx, dir+"/vol")
	if err != nil {
		t.Fatal(err)
	}
	fi := export.FileInfo{Type: export.TypeFile, Mode: 0o640, UID: 2000, GID: 2001, Size: 13, Mtime: time.Unix(1700000000, 0), Atime: time.Unix(1700000000, 0)}
	f, err := tr.Create(ctx, node, "greeting", fi)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.WriteAt(ctx, f, []byte("hello, libnfs"), 0, true); err != nil {
		t.Fatal(err)
	}
	if err := tr.Finish(ctx, f, fi); err != nil {
		t.Fatal(err)
	}

	url := func(p string) string {
		u := "nfs://" + g.server + g.path + "/" + p + "?version=4"
		if g.opts.NFSPort != 0 {
			u += fmt.Sprintf("&nfsport=%d", g.opts.NFSPort)
		}
		return u
	}
	ls := func(p string) string {
		out, err := exec.CommandContext(ctx, "nfs-ls", url(p)).CombinedOutput()
		if err != nil {
			t.Fatalf("nfs-ls %s: %v\n%s", url(p), err, out)
		}
		return string(out)
	}
	// nfs-ls lists a directory: mode, links, uid, gid, size, name.
	if got := fields(ls(dir), "vol"); got[0] != "drwxr-x---" || got[2] != "2000" || got[3] != "2001" {
		t.Errorf("libnfs sees the directory as %v, want drwxr-x--- 2000 2001", got)
	}
	if got := fields(ls(dir+"/vol"), "greeting"); got[0] != "-rw-r-----" || got[2] != "2000" || got[3] != "2001" || got[4] != "13" {
		t.Errorf("libnfs sees the file as %v, want -rw-r----- 2000 2001 13 bytes", got)
	}
	out, err := exec.CommandContext(ctx, "nfs-cat", url(dir+"/vol/greeting")).CombinedOutput()
	if err != nil || string(out) != "hello, libnfs" {
		t.Errorf("nfs-cat: %q, %v; want %q", out, err, "hello, libnfs")
	}
}

// fields is the nfs-ls line of name, split into its fields (six, or six empty ones).
func fields(listing, name string) []string {
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && f[5] == name {
			return f
		}
	}
	return make([]string, 6)
}
