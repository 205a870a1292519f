package wire_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire/wiretest"
)

// opLog is an Observer that records every round trip.
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *opLog) observe(server, op string, _ time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		op += "(" + wire.Result(err) + ")"
	}
	l.ops = append(l.ops, op)
}

// take returns the round trips since the last take.
func (l *opLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ops := l.ops
	l.ops = nil
	return ops
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func wantOps(t *testing.T, what string, log *opLog, want ...string) {
	t.Helper()
	if got := log.take(); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: round trips %v, want %v", what, got, want)
	}
}

// overVersion is what the round trips of want are named over NFS version v: NFSv4.1 COMPOUNDs
// are named for the NFSv3 procedure they replace, READDIRPLUS is READDIR and statuses are NFS4ERR_*.
func overVersion(v wire.Version, want ...string) []string {
	if v != wire.Version41 {
		return want
	}
	out := make([]string, len(want))
	for i, w := range want {
		out[i] = strings.NewReplacer("NFS3ERR_", "NFS4ERR_", "READDIRPLUS", "READDIR").Replace(w)
	}
	return out
}

var attrs0777 = export.DirAttrs{Mode: 0o777}

// The provisioner's operations with a warm cache: one round trip per
// provision, two per archive, one per delete of an empty directory.
func TestRoundTrips(t *testing.T) {
	log := &opLog{}
	_, fsys := openInProcess(t, wire.Options{Observer: log.observe})
	wantOps(t, "Open", log, "MNT", "GETATTR")
	c := ctx(t)

	must(t, fsys.Mkdir(c, "default-pvc-1", export.DirAttrs{Mode: 0o750, UID: 1000, GID: 1000}))
	wantOps(t, "provision at the root", log, "MKDIR")

	must(t, fsys.MkdirAll(c, "ns", attrs0777))
	log.take()
	must(t, fsys.MkdirAll(c, "ns", attrs0777))
	must(t, fsys.Mkdir(c, "ns/pvc-2", attrs0777))
	wantOps(t, "provision below a cached parent (MkdirAll of the parent is free)", log, "MKDIR")

	must(t, fsys.Rename(c, "default-pvc-1", "archived-default-pvc-1"))
	wantOps(t, "archive", log, "LOOKUP(NFS3ERR_NOENT)", "RENAME")

	must(t, fsys.RemoveAll(c, "ns/pvc-2", nil))
	wantOps(t, "delete an empty directory", log, "RMDIR")

	must(t, fsys.RemoveAll(c, "ns/pvc-2", nil))
	wantOps(t, "delete a missing directory", log, "RMDIR(NFS3ERR_NOENT)")

	if _, err := fsys.Stat(c, "archived-default-pvc-1"); err != nil {
		t.Fatal(err)
	}
	wantOps(t, "stat", log, "LOOKUP")

	must(t, fsys.Ping(c))
	wantOps(t, "ping", log, "NULL")

	// A retried provision: the directory exists; Mkdir says so and changes nothing.
	if err := fsys.Mkdir(c, "ns", attrs0777); !errors.Is(err, export.ErrExist) {
		t.Fatalf("Mkdir of an existing directory: %v, want ErrExist", err)
	}
	wantOps(t, "provision of an existing directory", log, "MKDIR(NFS3ERR_EXIST)")
}

// A cold cache walks down with LOOKUPs and creates what is missing.
func TestRoundTripsColdCache(t *testing.T) {
	log := &opLog{}
	srv, fsys := openInProcess(t, wire.Options{Observer: log.observe})
	if err := os.MkdirAll(filepath.Join(srv.Dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	log.take()
	must(t, fsys.MkdirAll(ctx(t), "a/b/c/d", attrs0777))
	wantOps(t, "cold MkdirAll", log, "LOOKUP", "LOOKUP", "LOOKUP(NFS3ERR_NOENT)", "MKDIR", "MKDIR")
	must(t, fsys.MkdirAll(ctx(t), "a/b/c/d/e", attrs0777))
	wantOps(t, "warm MkdirAll", log, "MKDIR")
}

// Handles the server has forgotten (NFS3ERR_STALE) are dropped from the
// cache and the operation is retried once, remounting when the root
// handle itself went stale.
func TestStaleHandleRetry(t *testing.T) {
	const limit = 32
	srv := wiretest.StartLimited(t, "", limit)
	log := &opLog{}
	op := wire.NewOpener(wire.Options{NFSPort: srv.Port, MountPort: srv.Port, Observer: log.observe})
	defer op.Close()
	fsys, err := op.Open(ctx(t), srv.Host, srv.Path)
	if err != nil {
		t.Fatal(err)
	}
	must(t, fsys.MkdirAll(ctx(t), "parent", attrs0777))
	for i := 0; i < 2*limit; i++ { // push the handles of "parent" and the root out of the server
		must(t, fsys.MkdirAll(ctx(t), fmt.Sprintf("other-%d", i), attrs0777))
	}
	log.take()
	must(t, fsys.MkdirAll(ctx(t), "parent/child", attrs0777))
	ops := log.take()
	if len(ops) < 2 || ops[0] != "MKDIR(NFS3ERR_STALE)" || ops[len(ops)-1] != "MKDIR" {
		t.Errorf("round trips %v: want a stale MKDIR, a refresh and a MKDIR", ops)
	}
	if fi, err := os.Stat(filepath.Join(srv.Dir, "parent", "child")); err != nil || !fi.IsDir() {
		t.Errorf("parent/child not created: %v", err)
	}
}

// Open fails with a mapped error for an export the server refuses, and
// with a connection error for a server that is not there.
func TestOpenErrors(t *testing.T) {
	srv := wiretest.Start(t, "")
	srv.Close()
	op := wire.NewOpener(wire.Options{NFSPort: srv.Port, MountPort: srv.Port, Timeout: 2 * time.Second})
	defer op.Close()
	_, err := op.Open(ctx(t), srv.Host, srv.Path)
	if !errors.Is(err, sunrpc.ErrConnection) {
		t.Errorf("Open of a stopped server: got %v, want sunrpc.ErrConnection", err)
	}
	if err := op.Ping(ctx(t), srv.Host, srv.Path); !errors.Is(err, sunrpc.ErrConnection) {
		t.Errorf("Ping of a stopped server: got %v, want sunrpc.ErrConnection", err)
	}
	op.Close()
	if _, err := op.Open(ctx(t), srv.Host, srv.Path); !errors.Is(err, sunrpc.ErrClosed) {
		t.Errorf("Open after Close: got %v, want sunrpc.ErrClosed", err)
	}
}

// One session per export: a second Open reuses it without any round trip.
func TestOpenReusesSession(t *testing.T) {
	srv := wiretest.Start(t, "")
	log := &opLog{}
	op := wire.NewOpener(wire.Options{NFSPort: srv.Port, MountPort: srv.Port, Observer: log.observe})
	defer op.Close()
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := op.Open(ctx(t), srv.Host, srv.Path); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	wantOps(t, "10 concurrent Opens", log, "MNT", "GETATTR")
	must(t, op.Ping(ctx(t), srv.Host, srv.Path))
	wantOps(t, "Ping", log, "NULL")
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The server is killed and restarts with every handle forgotten: the next
// operation redials, meets the stale handles, mounts again and succeeds.
func TestServerRestart(t *testing.T) {
	log := &opLog{}
	srv, fsys := openInProcess(t, wire.Options{Observer: log.observe})
	must(t, fsys.MkdirAll(ctx(t), "ns/a", attrs0777))
	must(t, srv.Restart())
	log.take()
	must(t, fsys.MkdirAll(ctx(t), "ns/b", attrs0777))
	ops := log.take()
	t.Logf("round trips after a restart: %v", ops)
	if len(ops) > 0 && ops[0] == "MKDIR(connection)" {
		// Sent before the client saw the connection close; sent again.
		ops = ops[1:]
	}
	want := []string{"MKDIR(NFS3ERR_STALE)", "GETATTR(NFS3ERR_STALE)", "MNT", "GETATTR", "LOOKUP", "MKDIR"}
	if !reflect.DeepEqual(ops, want) {
		t.Errorf("round trips %v, want %v", ops, want)
	}
	if _, err := os.Stat(filepath.Join(srv.Dir, "ns", "b")); err != nil {
		t.Error(err)
	}
	must(t, srv.Close())
	// While it is down, calls fail with a connection error, fast.
	start := time.Now()
	if err := fsys.MkdirAll(ctx(t), "ns/c", attrs0777); !errors.Is(err, sunrpc.ErrConnection) {
		t.Errorf("server down: got %v, want sunrpc.ErrConnection", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("server down: failed after %v", d)
	}
}
