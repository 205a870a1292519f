package wire

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire/wiretest"
)

// nonRootUID is the uid the container image runs as (distroless "nonroot").
const nonRootUID = 65532

const nonRootChildEnv = "NFSP_WIRE_NONROOT_CHILD"

// TestNonRoot re-runs this test binary as uid 65532 with no capabilities,
// as the chart's pod runs: the wire backend needs no privilege at all, a
// privileged source port is refused without NET_BIND_SERVICE, and works with
// that one capability; the default (auto) takes a reserved port where it may
// and any port where it may not, and works either way.
func TestNonRoot(t *testing.T) {
	if mode := os.Getenv(nonRootChildEnv); mode != "" {
		nonRootChild(t, mode)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a process as another user")
	}
	// t.TempDir's parent is private to root; the child must reach its binary.
	dir, err := os.MkdirTemp("", "nfsp-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "wire.test")
	copyExecutable(t, bin)

	run := func(mode string, ambient []uintptr) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "-test.run=^TestNonRoot$", "-test.v", "-test.count=1")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), nonRootChildEnv+"="+mode, "TMPDIR="+dir, "HOME="+dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential:  &syscall.Credential{Uid: nonRootUID, Gid: nonRootUID},
			AmbientCaps: ambient,
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child %q as uid %d: %v\n%s", mode, nonRootUID, err, out)
		}
		if !strings.Contains(string(out), "nonroot-child-ok "+mode) {
			t.Fatalf("child %q did not run its checks:\n%s", mode, out)
		}
		return string(out)
	}
	const capNetBindService = 10
	run("plain", nil)
	run("privileged-denied", nil)
	run("privileged", []uintptr{capNetBindService})
	run("auto-denied", nil)
	run("auto", []uintptr{capNetBindService})
}

// nonRootModes are the child runs' source port settings.
var nonRootModes = map[string]sunrpc.SourcePort{
	"plain": sunrpc.SourcePortAny, "privileged-denied": sunrpc.SourcePortReserved, "privileged": sunrpc.SourcePortReserved,
	"auto-denied": sunrpc.SourcePortAuto, "auto": sunrpc.SourcePortAuto,
}

func nonRootChild(t *testing.T, mode string) {
	if os.Geteuid() != nonRootUID {
		t.Fatalf("child runs as uid %d, want %d", os.Geteuid(), nonRootUID)
	}
	srv := wiretest.Start(t, t.TempDir())
	op := NewOpener(Options{NFSPort: srv.Port, MountPort: srv.Port, Timeout: 10 * time.Second, SourcePort: nonRootModes[mode]})
	defer op.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fsys, err := op.Open(ctx, srv.Host, "/")
	if mode == "privileged-denied" {
		if err == nil {
			t.Fatal("a source port below 1024 was bound without NET_BIND_SERVICE")
		}
		if !errors.Is(err, syscall.EACCES) && !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("want a permission error binding the port, got %v", err)
		}
		t.Logf("nonroot-child-ok %s: %v", mode, err)
		return
	}
	if err != nil {
		t.Fatalf("open as uid %d (%s): %v", nonRootUID, mode, err)
	}
	if strings.HasPrefix(mode, "auto") {
		// Which port auto took: reserved with the capability, ephemeral without.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		nc, err := sunrpc.DialTCP(ctx, "127.0.0.1", l.Addr().(*net.TCPAddr).Port, sunrpc.SourcePortAuto)
		if err != nil {
			t.Fatalf("auto dial as uid %d (%s): %v", nonRootUID, mode, err)
		}
		port := nc.LocalAddr().(*net.TCPAddr).Port
		nc.Close()
		if reserved := port < 1024; reserved != (mode == "auto") {
			t.Fatalf("auto (%s) connected from port %d", mode, port)
		}
	}
	// The in-process server runs as the same uid and cannot chown to another.
	attrs := export.DirAttrs{Mode: 0o770, UID: nonRootUID, GID: nonRootUID}
	if err := fsys.MkdirAll(ctx, "vol/sub", attrs); err != nil {
		t.Fatalf("mkdir as uid %d (%s): %v", nonRootUID, mode, err)
	}
	if err := fsys.Rename(ctx, "vol", "archived-vol"); err != nil {
		t.Fatalf("rename as uid %d (%s): %v", nonRootUID, mode, err)
	}
	t.Logf("nonroot-child-ok %s", mode)
}

func copyExecutable(t *testing.T, dst string) {
	t.Helper()
	src, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
