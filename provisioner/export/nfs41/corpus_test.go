package nfs41

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
)

// TestRecordCorpus records a real server's replies to every operation as FuzzReplies seeds:
// NFSP_RECORD_CORPUS=host:/dir (a directory of an export, in its pseudo-filesystem, that the
// test may write in) go test -run RecordCorpus ./provisioner/export/nfs41/
func TestRecordCorpus(t *testing.T) {
	target := os.Getenv("NFSP_RECORD_CORPUS")
	if target == "" {
		t.Skip("NFSP_RECORD_CORPUS is not set")
	}
	host, dir, _ := cutHost(target)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Dial(ctx, Config{Server: host, RPC: sunrpc.Config{Timeout: 5 * time.Second, MachineName: "corpus", MaxRecord: 1 << 20},
		Dial: func(ctx context.Context) (net.Conn, error) {
			return sunrpc.DialTCP(ctx, host, 2049, sunrpc.SourcePortAny)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := filepath.Join("testdata", "fuzz", "FuzzReplies")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	c.roundTrip = func(ctx context.Context, name string, cr *sunrpc.Cred, ops []op) error {
		p := procCompound
		p.Name = name
		return c.rpc.Call(ctx, p, cr, func(e *sunrpc.Encoder) { encodeCompound(e, name, ops) }, func(res []byte) error {
			seed := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(res)))
			file := filepath.Join(out, fmt.Sprintf("%s-%x", name, sha256.Sum256(res))[:len(name)+17])
			if err := os.WriteFile(file, []byte(seed), 0o644); err != nil {
				t.Error(err)
			}
			return decodeCompound(res, ops)
		})
	}
	root, _, err := c.Root(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	cr := &sunrpc.RootCred
	name := fmt.Sprintf("corpus-%d", time.Now().UnixNano())
	d, _, err := c.Mkdir(ctx, root, name, SetAttr{Mode: 0o755, SetOwner: true, UID: 1000, GID: 1000}, cr)
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := c.CreateFile(ctx, d, "f", SetAttr{Mode: 0o644}, cr)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _ = c.Write(ctx, f, 0, WriteUnstable, []byte("corpus"), cr)
	_, _ = c.Commit(ctx, f, cr)
	_, _, _ = c.Read(ctx, f, make([]byte, 64), 0, cr)
	_ = c.Symlink(ctx, d, "l", "f", SetAttr{NoMode: true}, cr)
	_, _, _, _ = c.ReadDir(ctx, d, 0, [8]byte{}, cr)
	l, _, _ := c.Lookup(ctx, d, "l", cr)
	_, _ = c.Readlink(ctx, l, cr)
	_, _, _ = c.Lookup(ctx, d, "missing", cr)
	_ = c.SetAttr(ctx, f, SetAttr{Mode: 0o600, SetSize: true, Size: 3, SetTimes: true}, cr)
	_, _ = c.GetAttr(ctx, f, cr)
	_, _ = c.Capacity(ctx, root, cr)
	_, _, _ = c.IOSize(ctx, root, cr)
	_ = c.Rename(ctx, d, "f", d, "g", cr)
	_ = c.RemoveKind(ctx, d, "g", true, cr)
	_ = c.RemoveKind(ctx, d, "g", false, cr)
	_ = c.RemoveKind(ctx, d, "l", false, cr)
	_ = c.RemoveKind(ctx, root, name, true, cr)
	// The session calls: answered by a second EXCHANGE_ID and CREATE_SESSION.
	_ = c.exchangeID(ctx)
	if s, err := c.createSession(ctx); err == nil {
		c.destroySession(s)
	}
}

func cutHost(s string) (host, dir string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "/", false
}
