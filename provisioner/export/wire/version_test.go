package wire_test

import (
	"context"
	"sync"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire"
)

// auto falls back to NFSv3 on a server without NFSv4 (the in-process one), and says what it chose;
// the version a context carries wins over the Opener's.
func TestVersionAutoFallsBackToV3(t *testing.T) {
	var mu sync.Mutex
	var opened []string
	o := wire.Options{Version: wire.VersionAuto, Opened: func(_, _ string, v wire.Version) {
		mu.Lock()
		opened = append(opened, string(v))
		mu.Unlock()
	}}
	srv, fsys := openInProcess(t, o)
	if fsys.Version() != wire.Version3 || export.VersionOf(fsys) != "3" {
		t.Fatalf("auto on an NFSv3-only server chose %s", fsys.Version())
	}
	if err := fsys.MkdirAll(ctx(t), "a", export.DirAttrs{Mode: 0o755}); err != nil {
		t.Fatal(err)
	}

	o.NFSPort, o.MountPort = srv.Port, srv.Port
	op := wire.NewOpener(o)
	defer op.Close()
	v4 := export.WithVersion(context.Background(), "4.1")
	if _, err := op.Open(v4, srv.Host, srv.Path); err == nil {
		t.Error("opened an NFSv3-only server over NFSv4.1, as the context asked")
	}
	got, err := op.Open(export.WithVersion(context.Background(), "3"), srv.Host, srv.Path)
	if err != nil || export.VersionOf(got) != "3" {
		t.Errorf("over NFSv3 as the context asked: %v %v", export.VersionOf(got), err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(opened) != 2 || opened[0] != "3" || opened[1] != "3" {
		t.Errorf("Opened told %v, want [3 3]", opened)
	}
}
