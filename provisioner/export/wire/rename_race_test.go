package wire

import (
	"context"
	"testing"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// A LOOKUP of vol answered before vol is archived, but heard only after
// the archive's RENAME has completed and forgotten vol, carries the handle
// that now names archived-vol. It must not go back into the cache: a later
// MkdirAll(vol/b) would create b inside the archive and call it success.
func TestRenameRaceStaleLookup(t *testing.T) {
	srv := newInodeServer(t)
	srv.mkdir("vol")
	held, release := make(chan struct{}), make(chan struct{})
	first := true
	srv.hold = func(proc uint32, name string) chan struct{} {
		if proc == nfsc.NFSProc3Lookup && name == "vol" && first {
			first = false
			close(held)
			return release
		}
		return nil
	}
	fsys := srv.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	statDone := make(chan error, 1)
	go func() {
		_, err := fsys.Stat(ctx, "vol")
		statDone <- err
	}()
	<-held // the server has looked vol up; the reply is on its way
	if err := fsys.Rename(ctx, "vol", "archived-vol"); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	close(release)
	if err := <-statDone; err != nil {
		t.Fatalf("Stat: %v", err)
	}

	if err := fsys.MkdirAll(ctx, "vol/b", export.DirAttrs{Mode: 0o755}); err != nil {
		t.Fatalf("MkdirAll(vol/b): %v", err)
	}
	if srv.at("archived-vol", "b") != nil {
		t.Fatal("vol/b was created inside archived-vol: a stale handle went back into the cache")
	}
	if srv.at("vol", "b") == nil {
		t.Fatal("vol/b was not created")
	}
}

// A server that clears setgid on MKDIR (as mkdir(2) does) gets the mode
// set exactly with a SETATTR on the new handle.
func TestMkdirModeFixedOnHandle(t *testing.T) {
	srv := newInodeServer(t)
	srv.mkdirMode = func(m uint32) uint32 { return m &^ 0o2000 }
	fsys := srv.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fsys.Mkdir(ctx, "vol", export.DirAttrs{Mode: 0o2775, UID: 1000, GID: 1000}); err != nil {
		t.Fatal(err)
	}
	if n := srv.at("vol"); n == nil || n.mode != 0o2775 || n.uid != 1000 {
		t.Fatalf("vol: %+v, want mode 2775 owner 1000", n)
	}
}
