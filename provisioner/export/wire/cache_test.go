package wire

import (
	"fmt"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

func TestDirCache(t *testing.T) {
	c := newDirCache(dirRef{fh: []byte("root")}, 5)
	ref := func(s string) dirRef { return dirRef{fh: []byte(s), attrs: attrs{typ: nf3Dir}, gen: c.gen} }
	c.put([]string{"a"}, ref("a"))
	c.put([]string{"a", "b"}, ref("b"))
	c.put([]string{"x", "y"}, ref("y")) // parent not cached: ignored
	if got, n := c.deepest([]string{"a", "b", "c"}); n != 2 || string(got.fh) != "b" {
		t.Errorf("deepest = %s, %d", got.fh, n)
	}
	if got, n := c.deepest([]string{"x", "y"}); n != 0 || string(got.fh) != "root" {
		t.Errorf("deepest of uncached = %s, %d", got.fh, n)
	}
	if c.len() != 2 {
		t.Errorf("len = %d", c.len())
	}
	c.put([]string{"a"}, ref("a2")) // a new handle for a: its subtree goes
	if _, n := c.deepest([]string{"a", "b"}); n != 1 {
		t.Errorf("after a new handle for a: deepest covers %d", n)
	}
	c.put([]string{"a", "b"}, ref("b"))
	c.forget([]string{"a"})
	if _, n := c.deepest([]string{"a", "b"}); n != 0 || c.len() != 0 {
		t.Errorf("after forget: deepest covers %d, len %d", n, c.len())
	}
	for i := 0; i < 12; i++ { // bounded: emptied when full
		c.put([]string{fmt.Sprint(i)}, ref("d"))
		if c.len() > 5 {
			t.Fatalf("len %d beyond the bound", c.len())
		}
	}
	old := c.rootRef()
	c.reset(ref("new-root"))
	if got := c.rootRef(); string(got.fh) != "new-root" || c.len() != 0 {
		t.Errorf("after reset: root %s, len %d", got.fh, c.len())
	}
	// A handle learnt before the reset is not put into the new cache.
	stale := ref("stale")
	stale.gen = old.gen
	c.put([]string{"a"}, stale)
	if _, n := c.deepest([]string{"a"}); n != 0 {
		t.Error("a handle from before a reset was cached")
	}
}

func TestSplitPath(t *testing.T) {
	for _, p := range []string{"", "/", "/a", "a/", "a//b", "./a", "a/./b", "..", "a/../b", "a\x00b", string(make([]byte, 256))} {
		if _, err := export.SplitPath(p, true); err == nil {
			t.Errorf("splitPath(%q) accepted", p)
		}
	}
	if e, err := export.SplitPath(".", true); err != nil || len(e) != 0 {
		t.Errorf("splitPath(.) = %v, %v", e, err)
	}
	if e, err := export.SplitPath("ns/pvc", true); err != nil || len(e) != 2 {
		t.Errorf("splitPath(ns/pvc) = %v, %v", e, err)
	}
}

func TestCredentialChoice(t *testing.T) {
	adminRoot := attrs{typ: nf3Dir, mode: 0o755}                     // root:root 0755
	shared := attrs{typ: nf3Dir, mode: 0o777, uid: 2000, gid: 2000}  // anyone may write
	private := attrs{typ: nf3Dir, mode: 0o700, uid: 2000, gid: 2000} // someone else's
	own := attrs{typ: nf3Dir, mode: 0o755, uid: 1000, gid: 1000}
	cases := []struct {
		name string
		p    attrs
		uid  uint32
		want []uint32 // uids tried, in order
	}{
		{"root", adminRoot, 0, []uint32{0}},
		{"admin-owned parent: root first", adminRoot, 1000, []uint32{0, 1000}},
		{"shared parent: the user first", shared, 1000, []uint32{1000, 0}},
		{"own parent", own, 1000, []uint32{1000, 0}},
		{"private parent of someone else: never root", private, 1000, []uint32{1000}},
	}
	for _, c := range cases {
		var got []uint32
		for _, cr := range mkdirCreds(c.p, c.uid, 1000) {
			got = append(got, cr.UID)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: tried %v, want %v", c.name, got, c.want)
		}
	}
	if cr := mkdirCreds(shared, 1000, 1001)[0]; fmt.Sprint(cr.GIDs) != "[1001 2000]" {
		t.Errorf("aux gids %v, want the new gid and the parent's", cr.GIDs)
	}
}
