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
	"testing"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc/rpctest"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire/wiretest"
)

// fakePortmapper answers GETPORT with ports[prog] (0 when absent).
func fakePortmapper(t *testing.T, ports map[uint32]uint32, calls *atomic.Int32) *rpctest.Server {
	return rpctest.NewServer(t, rpctest.AnswerEach(func(call rpctest.Call) []byte {
		calls.Add(1)
		d := decoder{B: call.Args}
		prog, vers, prot := d.Uint32(), d.Uint32(), d.Uint32()
		port := ports[prog]
		if call.Prog != 100000 || call.Vers != 2 || call.Proc != 3 || vers != 3 || prot != 6 {
			port = 0
		}
		return rpctest.Framed(rpctest.Reply(call.XID, port))
	}))
}

func TestPortmapper(t *testing.T) {
	srv := wiretest.Start(t, "")
	var calls atomic.Int32
	pm := fakePortmapper(t, map[uint32]uint32{nfsc.Nfs3Prog: uint32(srv.Port), nfsc.MountProg: uint32(srv.Port)}, &calls)
	var ops []string
	op := NewOpener(Options{PortmapPort: pm.Port(), Observer: func(_, op string, _ time.Duration, _ error) { ops = append(ops, op) }})
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
	op := NewOpener(Options{PortmapPort: pm.Port()})
	defer op.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := op.Open(ctx, "127.0.0.1", "/export")
	if err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("got %v, want 'not registered'", err)
	}
}

func TestMountRefused(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.AnswerEach(func(call rpctest.Call) []byte { return rpctest.Framed(rpctest.Reply(call.XID, nfsc.MNT3ErrNoEnt)) }))
	op := NewOpener(Options{NFSPort: s.Port(), MountPort: s.Port()})
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
	nc, err := sunrpc.DialTCP(ctx, "127.0.0.1", l.Addr().(*net.TCPAddr).Port, sunrpc.SourcePortReserved)
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
	s := rpctest.NewServer(t, func(fc *rpctest.Conn) {
		for {
			call, err := fc.ReadCall()
			if err != nil {
				return
			}
			mu.Lock()
			xids = append(xids, call.XID)
			n := len(xids)
			mu.Unlock()
			res := rpctest.Words(nfs3ErrJukebox)
			if n == 3 {
				res = getattrOK(seedDir)
			}
			if fc.Send(append(rpctest.Reply(call.XID), res...)) != nil {
				return
			}
		}
	})
	var ops []string
	o := Options{Observer: func(_, op string, _ time.Duration, err error) { ops = append(ops, op+":"+Result(err)) }}.withDefaults()
	sess := &session{o: &o, nfs: &nfs3Client{rpc: testClientWith(t, s, o)}}
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
	s := rpctest.NewServer(t, rpctest.AnswerEach(func(call rpctest.Call) []byte {
		if n.Add(1) == 1 {
			return rpctest.Framed(append(rpctest.Reply(call.XID), rpctest.Words(nfs3ErrJukebox)...))
		}
		return rpctest.Framed(append(rpctest.Reply(call.XID), rpctest.Words(nfsc.NFS3ErrExist, 0, 0)...)) // no wcc attributes
	}))
	sess := &session{nfs: &nfs3Client{rpc: testClient(t, s, 5*time.Second)}}
	_, _, _, err := sess.nfs.mkdir(context.Background(), seedFH, "vol", sattr{mode: 0o755}, &rootCred)
	if statusOf(err) != nfsc.NFS3ErrExist || !errors.Is(err, export.ErrMaybeDone) {
		t.Fatalf("got %v, want NFS3ERR_EXIST marked ErrMaybeDone", err)
	}
}

// testClient is an RPC client of the test server s.
func testClient(t *testing.T, s *rpctest.Server, timeout time.Duration) *client {
	t.Helper()
	return testClientWith(t, s, Options{Timeout: timeout}.withDefaults())
}

// testClientWith is an RPC client of the test server s with the options o.
func testClientWith(t *testing.T, s *rpctest.Server, o Options) *client {
	t.Helper()
	port := s.Port()
	c := sunrpc.NewClient("fake", func(ctx context.Context) (net.Conn, error) {
		return sunrpc.DialTCP(ctx, "127.0.0.1", port, sunrpc.SourcePortAny)
	}, o.rpcConfig())
	t.Cleanup(c.Close)
	return c
}
