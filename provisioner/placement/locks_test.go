package placement

import (
	"testing"
	"time"
)

// A Provision inside a directory that a Delete is working on waits for it.
func TestProvisionWaitsForDeleteOfParent(t *testing.T) {
	l := NewLocks()
	tgt := "nfs.example"
	end, users := l.BeginDelete(tgt, "/a", "pvc-a")
	if len(users) > 0 {
		t.Fatal(users)
	}
	if _, err := l.BeginProvision(tgt, "/a/b/c", "pvc-c"); err == nil {
		t.Error("provision inside a directory being deleted was let through")
	}
	if _, err := l.BeginProvision(tgt, "/ab/c", "pvc-c"); err != nil {
		t.Errorf("provision beside it held back: %v", err)
	}
	end()
	if _, err := l.BeginProvision(tgt, "/a/b/c", "pvc-c"); err != nil {
		t.Errorf("after the delete: %v", err)
	}
	if _, users := l.BeginDelete(tgt, "/a", "pvc-a"); len(users) != 1 {
		t.Errorf("delete of a with a/b/c new: users %v", users)
	}
	l.ForgetVolume(tgt, "pvc-c") // what VolumeSeen does when the informer shows pvc-c
	if _, users := l.BeginDelete(tgt, "/a", "pvc-a"); len(users) != 0 {
		t.Errorf("once the informer has pvc-c the index answers for it: users %v", users)
	}
	// A volume being deleted is no longer new: what it held back goes ahead.
	if _, err := l.BeginProvision(tgt, "/x", "pvc-x"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.BeginProvision(tgt, "/x/y", "pvc-y"); err == nil {
		t.Error("a volume inside one provisioned a moment ago was let through")
	}
	l.ForgetVolume(tgt, "pvc-x")
	if _, err := l.BeginProvision(tgt, "/x/y", "pvc-y"); err != nil {
		t.Errorf("after pvc-x's delete began: %v", err)
	}
}

// A volume whose PV the API server keeps refusing (the library retries saving it for as long as
// it takes) still holds its directory minutes later; the record goes when its PV is seen.
func TestRecordKeptUntilForgotten(t *testing.T) {
	l := NewLocks()
	now := time.Now()
	l.now = func() time.Time { return now }
	if _, err := l.BeginProvision("nfs.example", "/srv/nfs/ns/x", "pvc-b"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Minute)
	if _, err := l.BeginProvision("nfs.example", "/srv/nfs/ns/x/inner", "pvc-c"); err == nil {
		t.Fatal("ten minutes on, an unsaved volume's directory no longer held")
	}
	l.ForgetVolume("NFS.example", "pvc-b")
	if _, err := l.BeginProvision("nfs.example", "/srv/nfs/ns/x/inner", "pvc-c"); err != nil {
		t.Errorf("once forgotten (its PV seen) the index answers for it: %v", err)
	}
	now = now.Add(2 * recentTTL)
	if _, err := l.BeginProvision("nfs.example", "/srv/nfs/ns/x/inner/deeper", "pvc-d"); err != nil {
		t.Errorf("a record past its TTL still holds: %v", err)
	}
}
