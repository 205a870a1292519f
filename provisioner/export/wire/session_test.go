package wire

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire/wiretest"
)

// fakePortmapper answers GETPORT with ports[prog] (0 when absent).
func fakePortmapper(t *testing.T, ports map[uint32]uint32, calls *atomic.Int32) *fakeServer {
	return newFakeServer(t, answerEach(func(call fakeCall) []byte {
		calls.Add(1)
		d := decoder{b: call.args}
		prog, vers, prot := d.uint32(), d.uint32(), d.uint32()
		port := ports[prog]
		if call.prog != 100000 || call.vers != 2 || call.proc != 3 || vers != 3 || prot != 6 {
			port = 0
		}
		return framed(reply(call.xid, port))
	}))
}

func TestPortmapper(t *testing.T) {
	srv := wiretest.Start(t, "")
	var calls atomic.Int32
	pm := fakePortmapper(t, map[uint32]uint32{nfsc.Nfs3Prog: uint32(srv.Port), nfsc.MountProg: uint32(srv.Port)}, &calls)
	var ops []string
	op := NewOpener(Options{PortmapPort: pm.port(), Observer: func(_, op string, _ time.Duration, _ error) { ops = append(ops, op) }})
	defer op.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fsys, err := op.OpenFS(ctx, srv.Host, srv.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.MkdirAll(ctx, "x", export.DirAttrs{Mode: 0o777}); err != nil {
		t.Fatal(err)
	}
	want := "GETPORT MNT GETPORT GETATTR MKDIR" // MOUNT's port, then NFS's when its connection is dialled
	if got := strings.Join(ops, " "); got != want {
		t.Errorf("round trips %q, want %q", got, want)
	}
}

func TestPortmapperNotRegistered(t *testing.T) {
	var calls atomic.Int32
	pm := fakePortmapper(t, nil, &calls)
	op := NewOpener(Options{PortmapPort: pm.port()})
	defer op.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := op.Open(ctx, "127.0.0.1", "/export")
	if err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("got %v, want 'not registered'", err)
	}
}

func TestMountRefused(t *testing.T) {
	s := newFakeServer(t, answerEach(func(call fakeCall) []byte { return framed(reply(call.xid, nfsc.MNT3ErrNoEnt)) }))
	op := NewOpener(Options{NFSPort: s.port(), MountPort: s.port()})
	defer op.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := op.Open(ctx, "127.0.0.1", "/nope")
	if !errors.Is(err, export.ErrNotExist) || !strings.Contains(err.Error(), "mount 127.0.0.1:/nope") {
		t.Fatalf("got %v, want a mount error wrapping ErrNotExist", err)
	}
}

func TestPrivilegedPort(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind a port below 1024")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := dialTCP(ctx, "127.0.0.1", l.Addr().(*net.TCPAddr).Port, SourcePortReserved)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if p := nc.LocalAddr().(*net.TCPAddr).Port; p >= 1024 {
		t.Errorf("source port %d, want < 1024", p)
	}
}

// Everything an Opener starts stops at Close.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		srv, err := wiretest.Listen(t.TempDir(), wiretest.DefaultHandleLimit)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		op := NewOpener(Options{NFSPort: srv.Port, MountPort: srv.Port})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		fsys, err := op.OpenFS(ctx, srv.Host, srv.Path)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			if err := fsys.MkdirAll(ctx, "a/b", export.DirAttrs{Mode: 0o777}); err != nil {
				t.Fatal(err)
			}
			if err := fsys.RemoveAll(ctx, "a", nil); err != nil {
				t.Fatal(err)
			}
		}
		op.Close()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// NFS3ERR_JUKEBOX: the call is sent again, with a new XID, after a pause.
func TestJukeboxRetry(t *testing.T) {
	var mu sync.Mutex
	var xids []uint32
	s := newFakeServer(t, func(fc *fakeConn) {
		for {
			call, err := fc.readCall()
			if err != nil {
				return
			}
			mu.Lock()
			xids = append(xids, call.xid)
			n := len(xids)
			mu.Unlock()
			res := words(nfs3ErrJukebox)
			if n == 3 {
				res = getattrOK(seedDir)
			}
			if fc.send(append(reply(call.xid), res...)) != nil {
				return
			}
		}
	})
	var ops []string
	o := Options{Observer: func(_, op string, _ time.Duration, err error) { ops = append(ops, op+":"+Result(err)) }}.withDefaults()
	rpc := s.client(t, 5*time.Second)
	rpc.observe = o.Observer
	sess := &session{o: &o, nfs: &nfs3Client{rpc: rpc}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := sess.nfs.getattr(ctx, seedFH, &rootCred)
	if err != nil || a != seedDir {
		t.Fatalf("getattr: %+v %v", a, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(xids) != 3 || xids[0] == xids[1] || xids[1] == xids[2] {
		t.Errorf("xids %v: want 3 calls with new XIDs", xids)
	}
	if want := "GETATTR:NFS3ERR_JUKEBOX GETATTR:NFS3ERR_JUKEBOX GETATTR:ok"; strings.Join(ops, " ") != want {
		t.Errorf("observed %v", ops)
	}
}

// A MKDIR the server answered with JUKEBOX ("started, may finish") and then with EXIST may have
// made the directory itself: its error says so, as a repeat's after a lost reply does.
func TestJukeboxThenExistMayBeDone(t *testing.T) {
	var n atomic.Int32
	s := newFakeServer(t, answerEach(func(call fakeCall) []byte {
		if n.Add(1) == 1 {
			return framed(append(reply(call.xid), words(nfs3ErrJukebox)...))
		}
		return framed(append(reply(call.xid), words(nfsc.NFS3ErrExist, 0, 0)...)) // no wcc attributes
	}))
	sess := &session{nfs: &nfs3Client{rpc: s.client(t, 5*time.Second)}}
	_, _, _, err := sess.nfs.mkdir(context.Background(), seedFH, "vol", sattr{mode: 0o755}, &rootCred)
	if statusOf(err) != nfsc.NFS3ErrExist || !errors.Is(err, export.ErrMaybeDone) {
		t.Fatalf("got %v, want NFS3ERR_EXIST marked ErrMaybeDone", err)
	}
}

func TestDialIPv6Literal(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, host := range []string{"::1", "[::1]"} {
		nc, err := dialTCP(ctx, host, port, SourcePortAny)
		if err != nil {
			t.Errorf("dial %s: %v", host, err)
			continue
		}
		nc.Close()
	}
}

// Only bind's refusal means "no reserved ports for this process"; connect's EPERM (a firewall
// rule on one destination) does not, or one blocked server would switch every later connection
// to ephemeral ports.
func TestBindDeniedIsBindsOnly(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}, true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EPERM)}, true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EPERM)}, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EACCES)}, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}, false},
	}
	for _, c := range cases {
		if got := bindDenied(c.err); got != c.want {
			t.Errorf("bindDenied(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
