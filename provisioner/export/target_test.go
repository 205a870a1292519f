package export

import "testing"

func TestNewTarget(t *testing.T) {
	same := [][2]string{
		{"nfs.example", "/srv/nfs"},
		{"NFS.Example.", "/srv/nfs/"},
		{" nfs.example ", "/srv//nfs"},
		{"nfs.example", "srv/./nfs"},
	}
	want := NewTarget(same[0][0], same[0][1])
	for _, s := range same {
		if got := NewTarget(s[0], s[1]); got != want {
			t.Errorf("NewTarget(%q, %q) = %v, want %v", s[0], s[1], got, want)
		}
	}
	if got := CanonicalServer("[::1]"); got != "::1" {
		t.Errorf("CanonicalServer([::1]) = %q", got)
	}
	if NewTarget("a.example", "/x") == NewTarget("b.example", "/x") || NewTarget("a", "/x") == NewTarget("a", "/y") {
		t.Error("different exports compare equal")
	}
}
