package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire/wiretest"
)

// lossyProxy forwards RPC records between clients and a server, except
// that the reply to the first call of procedure dropProc is swallowed and
// the client connection cut: the server did the work, the client never
// heard of it.
type lossyProxy struct {
	l        net.Listener
	target   string
	dropProc uint32
	mu       sync.Mutex
	dropped  bool
	dropXID  map[uint32]bool
	xids     []uint32 // of every call of dropProc
	wg       sync.WaitGroup
}

func newLossyProxy(t *testing.T, target string, dropProc uint32) *lossyProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{l: l, target: target, dropProc: dropProc, dropXID: map[uint32]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { l.Close(); p.wg.Wait() })
	return p
}

func (p *lossyProxy) port() int { return p.l.Addr().(*net.TCPAddr).Port }

func (p *lossyProxy) accept() {
	defer p.wg.Done()
	for {
		cc, err := p.l.Accept()
		if err != nil {
			return
		}
		sc, err := net.Dial("tcp", p.target)
		if err != nil {
			cc.Close()
			continue
		}
		p.wg.Add(2)
		go p.pipe(cc, sc, true)
		go p.pipe(sc, cc, false)
	}
}

func (p *lossyProxy) pipe(from, to net.Conn, calls bool) {
	defer p.wg.Done()
	defer from.Close()
	defer to.Close()
	r := bufio.NewReader(from)
	for {
		rec, err := sunrpc.ReadRecord(r, 1<<20)
		if err != nil || len(rec) < 24 {
			return
		}
		xid := binary.BigEndian.Uint32(rec)
		p.mu.Lock()
		if calls && binary.BigEndian.Uint32(rec[20:]) == p.dropProc {
			p.xids = append(p.xids, xid)
		}
		if calls && binary.BigEndian.Uint32(rec[20:]) == p.dropProc && !p.dropped {
			p.dropped = true
			p.dropXID[xid] = true
		}
		drop := !calls && p.dropXID[xid]
		if drop {
			delete(p.dropXID, xid) // one reply lost; a repeat of the call (same XID) is answered
		}
		p.mu.Unlock()
		if drop {
			return // cut the client off: the reply is lost
		}
		msg := binary.BigEndian.AppendUint32(nil, uint32(len(rec))|sunrpc.LastFragment)
		if _, err := to.Write(append(msg, rec...)); err != nil {
			return
		}
	}
}

// An operation whose reply was lost is sent again on a new connection and
// the repeat, finding the work done, succeeds.
func TestLostReplies(t *testing.T) {
	cases := []struct {
		proc uint32
		op   func(ctx context.Context, f *FS) error
		then func(dir string) error
	}{
		{nfsc.NFSProc3Mkdir,
			func(ctx context.Context, f *FS) error { return f.MkdirAll(ctx, "new", export.DirAttrs{Mode: 0o777}) },
			func(dir string) error { _, err := os.Stat(filepath.Join(dir, "new")); return err }},
		// Exclusive: the repeat meets the directory the lost call made and says so as an
		// ErrExist marked ErrMaybeDone, for the provisioner to judge (placement.go).
		{nfsc.NFSProc3Mkdir,
			func(ctx context.Context, f *FS) error {
				err := f.Mkdir(ctx, "new", export.DirAttrs{Mode: 0o750})
				if !errors.Is(err, export.ErrExist) || !errors.Is(err, export.ErrMaybeDone) {
					return fmt.Errorf("got %v, want ErrExist marked ErrMaybeDone", err)
				}
				return nil
			},
			func(dir string) error { _, err := os.Stat(filepath.Join(dir, "new")); return err }},
		{nfsc.NFSProc3RmDir,
			func(ctx context.Context, f *FS) error { return f.RemoveAll(ctx, "vol", nil) },
			func(dir string) error { return absent(filepath.Join(dir, "vol")) }},
		{nfsc.NFSProc3Rename,
			func(ctx context.Context, f *FS) error { return f.Rename(ctx, "vol", "archived-vol") },
			func(dir string) error { _, err := os.Stat(filepath.Join(dir, "archived-vol")); return err }},
		// In a copy, the repeat's EXIST is the object the lost call made: the copy goes on.
		{nfsc.NFSProc3Create, copyVol, copied},
		{nfsc.NFSProc3Symlink, copyVol, copied},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%d-%s", i, procName(tc.proc)), func(t *testing.T) {
			srv := wiretest.Start(t, "")
			if err := os.Mkdir(filepath.Join(srv.Dir, "vol"), 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(srv.Dir, "vol", "f"), []byte("data"), 0o644); err != nil {
				t.Fatal(err)
			}
			// The link points at its own directory, which the copy makes before any entry of it: the
			// in-process server (go-nfs) tests SYMLINK's name with a Stat that follows links, so a
			// repeated SYMLINK of a link whose target is not copied yet would get ACCES, not the
			// EXIST that Linux and Ganesha answer (a copy runs entries in parallel, in any order).
			if err := os.Symlink(".", filepath.Join(srv.Dir, "vol", "l")); err != nil {
				t.Fatal(err)
			}
			px := newLossyProxy(t, srv.Addr(), tc.proc)
			var ops []string
			var mu sync.Mutex
			f := OpenForTest(t, Options{NFSPort: px.port(), MountPort: srv.Port, Observer: func(_, op string, _ time.Duration, err error) {
				mu.Lock()
				ops = append(ops, op+":"+Result(err))
				mu.Unlock()
			}}, srv.Host, srv.Path)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tc.op(ctx, f); err != nil {
				t.Fatalf("%v (round trips %v)", err, ops)
			}
			if err := tc.then(srv.Dir); err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if !strings.Contains(strings.Join(ops, " "), procName(tc.proc)+":connection") {
				t.Errorf("round trips %v: the reply was not lost", ops)
			}
			// The repeat carries the first call's XID, so a server's duplicate request cache
			// can answer it with the reply that was lost instead of executing it again.
			px.mu.Lock()
			defer px.mu.Unlock()
			if len(px.xids) < 2 || px.xids[0] != px.xids[1] {
				t.Errorf("XIDs of the %s calls %v: want the repeat to reuse the first", procName(tc.proc), px.xids)
			}
		})
	}
}

func procName(p uint32) string {
	return map[uint32]string{nfsc.NFSProc3Mkdir: "MKDIR", nfsc.NFSProc3RmDir: "RMDIR", nfsc.NFSProc3Rename: "RENAME",
		nfsc.NFSProc3Create: "CREATE", nfsc.NFSProc3Symlink: "SYMLINK"}[p]
}

func copyVol(ctx context.Context, f *FS) error {
	return export.CopyTree(ctx, f.Tree(), "vol", f.Tree(), "copy", export.CopyOptions{})
}

func copied(dir string) error {
	if data, err := os.ReadFile(filepath.Join(dir, "copy", "f")); err != nil || string(data) != "data" {
		return fmt.Errorf("copy/f: %q, %v", data, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "copy", "l")); err != nil || target != "." {
		return fmt.Errorf("copy/l: %q, %v", target, err)
	}
	return nil
}

func absent(p string) error {
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		return errors.New(p + " still exists")
	}
	return nil
}
