package export

import (
	"sync"
	"testing"
)

func TestRemoveProgress(t *testing.T) {
	var told []Removed
	p := NewRemoveProgress(func(r Removed) { told = append(told, r) })
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); p.Add(3, 1) }()
	}
	wg.Wait()
	p.Report(false) // within ProgressEvery of the start: not told
	if len(told) != 0 {
		t.Fatalf("told %v before ProgressEvery passed", told)
	}
	p.Report(true)
	if len(told) != 1 || told[0] != (Removed{Files: 24, Dirs: 8}) {
		t.Fatalf("told %v, want one total of 24 files and 8 directories", told)
	}
	NewRemoveProgress(nil).Report(true) // counting only: nothing to tell, no panic
}
