package wire

import (
	"context"
	"errors"
	"fmt"
	"sync"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// removeParallel bounds the REMOVE calls in flight (pipelined on the one
// connection) while emptying one directory.
const removeParallel = 8

// maxPendingDirs bounds the subdirectories remembered from one listing
// page; the rest are found again by the next listing.
const maxPendingDirs = 16

// parallelTrees bounds the subtrees one RemoveAll removes at once besides
// its own walk (each with its own bounded stack): directories are walked
// concurrently so that the round trips of many small directories overlap.
const parallelTrees = 4

// RemoveAll removes p and everything below it; a missing p is not an
// error. An empty directory costs one RMDIR round trip with its parent's
// handle cached. A tree is removed depth first, one READDIRPLUS page at a
// time, with an explicit stack of at most Options.RemoveStackDepth levels
// (deeper trees are finished by walking again from the top), so memory is
// bounded by the page size and that depth, never by the size of the tree.
// Work inside a directory is done as its owner (a user's tree on a
// root_squash export is writable only by its owners), falling back to
// root; a directory its owner may not read or write is first made u+rwx.
func (f *FS) RemoveAll(ctx context.Context, p string, progress func(export.Removed)) error {
	elems, err := export.SplitPath(p, true)
	if err == nil && len(elems) == 0 {
		err = fmt.Errorf("the export root cannot be removed: %w", export.ErrInvalidPath)
	}
	if err == nil {
		r := &remover{s: f.s, counted: export.NewRemoveProgress(progress), maxDepth: f.s.o.RemoveStackDepth, trees: make(chan struct{}, parallelTrees)}
		err = f.s.retry(ctx, func() error { return r.removeAll(ctx, elems) })
		r.counted.Report(true)
	}
	if err != nil {
		return f.errorf("remove", p, err)
	}
	return nil
}

// remover is one RemoveAll: its running total and how it reports it.
type remover struct {
	s        *session
	maxDepth int
	counted  *export.RemoveProgress
	trees    chan struct{} // slots for subtrees removed concurrently
}

func (r *remover) removeAll(ctx context.Context, elems []string) error {
	s := r.s
	parent, err := s.dirAt(ctx, elems[:len(elems)-1])
	if errors.Is(err, export.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer s.cache.forget(elems)
	name := elems[len(elems)-1]
	// The common case first: an empty directory goes with one RMDIR.
	creds := ownerFirst(parent.attrs)
	err = withCreds(creds, func(cr *cred) error { return s.nfs.rmdir(ctx, parent.fh, name, cr) })
	switch statusOf(err) {
	case 0:
		if err == nil {
			r.counted.Add(0, 1)
		}
		return err
	case nfsc.NFS3ErrNoEnt:
		return nil
	case nfsc.NFS3ErrNotDir:
		return r.removeFile(ctx, parent, name)
	case nfsc.NFS3ErrNotEmpty, nfsc.NFS3ErrExist, nfsc.NFS3ErrIO:
		// IO: some servers report ENOTEMPTY that way; look closer.
	default:
		return err
	}
	return r.removeTree(ctx, parent, name, true)
}

// dirFrame is one directory on the way down: where it is (its parent's
// handle and its name, to RMDIR it once empty), its own handle, and a few
// subdirectories seen in its last listing page.
type dirFrame struct {
	parent   dirRef
	name     string
	dir      dirRef
	opened   bool       // made u+rwx if needed
	cookie   uint64     // where the next page starts (0 after removing entries)
	verf     [8]byte    // cookie verifier of that page
	pending  []dirEntry // subdirectories still to descend into
	rmdirs   int        // RMDIRs refused as not empty (someone writes into it)
	emptied  bool       // its whole listing was removed: RMDIR it without listing again
	subtrees sync.WaitGroup
	subErr   error // the first error of a subtree removed concurrently
	subMu    sync.Mutex
	idle     int // listings in a row after which nothing was removed
	seen     export.Removed
}

// maxIdleListings bounds the listings of one directory in a row that
// remove nothing (entries the listing shows but that are gone, as a server
// disagreeing with itself can show): RemoveAll fails instead of spinning.
const maxIdleListings = 8

// removeTree empties and removes the directory name in parent, depth
// first. When the stack would grow past maxDepth its bottom frame is
// dropped (each frame knows its own parent, so the frames above it still
// finish); once the stack is empty the walk starts again from the top,
// and the tree is smaller each time.
func (r *remover) removeTree(ctx context.Context, parent dirRef, name string, reporting bool) error {
	for {
		top, err := r.lookup(ctx, parent, name)
		if statusOf(err) == nfsc.NFS3ErrNoEnt {
			return nil
		}
		if err != nil {
			return err
		}
		if !top.attrs.isDir() {
			return r.removeFile(ctx, parent, name)
		}
		stack := []*dirFrame{{parent: parent, name: name, dir: top}}
		truncated := false
		for len(stack) > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			f := stack[len(stack)-1]
			child, err := r.step(ctx, f)
			if err != nil {
				return fmt.Errorf("%s: %w", framePath(stack, truncated), err)
			}
			switch {
			case child != nil && len(stack) == r.maxDepth:
				stack = append(stack[1:], child)
				truncated = true
			case child != nil:
				stack = append(stack, child)
			case f.dir.fh == nil: // removed
				stack = stack[:len(stack)-1]
			}
			if reporting { // progress is told from the caller's goroutine only
				r.counted.Report(false)
			}
		}
		if !truncated {
			return nil
		}
	}
}

// framePath names the directory at the top of the stack for an error
// message: its last few components, so the message stays short however
// deep the tree.
func framePath(stack []*dirFrame, truncated bool) string {
	names := make([]string, 0, 3)
	for _, f := range stack[max(0, len(stack)-3):] {
		names = append(names, f.name)
	}
	return export.TreePath(names, truncated || len(stack) > 3)
}

// step does one unit of work on the directory of f: it returns a
// subdirectory to descend into, or removes one page of f's entries, or —
// when f is empty — removes f itself (and clears f.dir.fh).
func (r *remover) step(ctx context.Context, f *dirFrame) (*dirFrame, error) {
	if !f.opened {
		f.opened = true
		r.makeListable(ctx, f)
	}
	r.handOutSubtrees(ctx, f)
	if child, err := r.nextPending(ctx, f); child != nil || err != nil {
		return child, err
	}
	// The subtrees handed out must be gone before this directory is
	// listed again or removed.
	f.subtrees.Wait()
	if f.subErr != nil {
		return nil, f.subErr
	}
	if f.emptied {
		f.emptied = false
		if removed, err := r.rmdirFrame(ctx, f); removed || err != nil {
			return nil, err
		}
	}
	if err := r.checkProgress(f); err != nil {
		return nil, err
	}
	return nil, r.removePage(ctx, f)
}

// makeListable gives the owner rwx on a directory about to go, so it can
// be listed and emptied; its owner (or root) may always chmod it.
func (r *remover) makeListable(ctx context.Context, f *dirFrame) {
	if f.dir.attrs.mode&0o700 == 0o700 {
		return
	}
	sa := sattr{mode: f.dir.attrs.mode | 0o700}
	if err := withCreds(ownerFirst(f.dir.attrs), func(cr *cred) error { return r.s.nfs.setattr(ctx, f.dir.fh, sa, cr) }); err == nil {
		f.dir.attrs.mode = sa.mode
	}
}

// handOutSubtrees gives pending subdirectories of f (all but the last) to
// goroutines while tree slots are free.
func (r *remover) handOutSubtrees(ctx context.Context, f *dirFrame) {
	for len(f.pending) > 1 {
		select {
		case r.trees <- struct{}{}:
		default:
			return
		}
		e := f.pending[0]
		f.pending = f.pending[1:]
		f.subtrees.Add(1)
		go func() {
			defer func() { <-r.trees; f.subtrees.Done() }()
			if err := r.removeTree(ctx, f.dir, e.name, false); err != nil {
				f.subMu.Lock()
				if f.subErr == nil {
					f.subErr = fmt.Errorf("%s: %w", e.name, err)
				}
				f.subMu.Unlock()
			}
		}()
	}
}

// nextPending returns the next pending subdirectory of f to descend into;
// entries gone since the listing are skipped and ones that are no longer
// directories removed.
func (r *remover) nextPending(ctx context.Context, f *dirFrame) (*dirFrame, error) {
	for len(f.pending) > 0 {
		e := f.pending[0]
		f.pending = f.pending[1:]
		ref := dirRef{fh: e.fh, attrs: e.attrs}
		if e.fh == nil || !e.haveAttrs {
			var err error
			if ref, err = r.lookup(ctx, f.dir, e.name); statusOf(err) == nfsc.NFS3ErrNoEnt {
				continue
			} else if err != nil {
				return nil, err
			}
		}
		if !ref.attrs.isDir() { // replaced since the listing
			if err := r.removeFile(ctx, f.dir, e.name); err != nil {
				return nil, err
			}
			continue
		}
		return &dirFrame{parent: f.dir, name: e.name, dir: ref}, nil
	}
	return nil, nil
}

// checkProgress fails a directory whose whole listing keeps showing
// entries while nothing anywhere gets removed (entries that cannot be
// found or removed), instead of listing it forever.
func (r *remover) checkProgress(f *dirFrame) error {
	done := r.counted.Done()
	if done == f.seen && f.cookie == 0 {
		if f.idle++; f.idle > maxIdleListings {
			return fmt.Errorf("listing keeps showing entries that cannot be found or removed")
		}
	} else if done != f.seen {
		f.idle, f.seen = 0, done
	}
	return nil
}

// removePage reads one page of f's listing, removes its files, keeps its
// subdirectories for later (up to maxPendingDirs) and moves f's cookie;
// when the listing is empty it removes f itself.
func (r *remover) removePage(ctx context.Context, f *dirFrame) error {
	var ents []dirEntry
	var verf [8]byte
	var eof bool
	err := withCreds(ownerFirst(f.dir.attrs), func(cr *cred) (err error) {
		ents, verf, eof, err = r.s.nfs.readdirPage(ctx, f.dir.fh, f.cookie, f.verf, cr)
		return err
	})
	if statusOf(err) == nfsc.NFS3ErrBadCookie || statusOf(err) == nfsc.NFS3ErrNotSync {
		f.cookie, f.verf = 0, [8]byte{} // the listing changed under us: start over
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing: %w", err)
	}
	var files []dirEntry
	for _, e := range ents {
		switch {
		case e.name == "." || e.name == "..":
		case e.haveAttrs && !e.attrs.isDir():
			files = append(files, e)
		case len(f.pending) < maxPendingDirs:
			f.pending = append(f.pending, e)
		}
	}
	if err := r.removeFiles(ctx, f.dir, files); err != nil {
		return err
	}
	switch {
	case len(files) > 0 || len(f.pending) > 0:
		// Entries went: the next page starts from the beginning again,
		// which lists only what is left. When this page was the whole
		// listing and only files were on it, the directory is empty now:
		// RMDIR it first, list again only if that fails.
		f.emptied = eof && f.cookie == 0 && len(f.pending) == 0
		f.cookie, f.verf = 0, [8]byte{}
		return nil
	case !eof:
		// Only entries kept for later (dot entries, directories beyond
		// the pending bound) on this page: read on.
		if len(ents) == 0 || ents[len(ents)-1].cookie == f.cookie {
			return fmt.Errorf("%w: %w", ErrProtocol, errNoProgress)
		}
		f.cookie, f.verf = ents[len(ents)-1].cookie, verf
		return nil
	case f.cookie != 0:
		// The end, but entries may be left before where this page began.
		f.cookie, f.verf = 0, [8]byte{}
		return nil
	}
	_, err = r.rmdirFrame(ctx, f)
	return err
}

// rmdirFrame removes the (empty) directory of f from its parent and
// reports whether it is gone; one refused as not empty (written into since
// it was listed) is left to be emptied again, a few times.
func (r *remover) rmdirFrame(ctx context.Context, f *dirFrame) (removed bool, err error) {
	err = withCreds(ownerFirst(f.parent.attrs), func(cr *cred) error { return r.s.nfs.rmdir(ctx, f.parent.fh, f.name, cr) })
	switch st := statusOf(err); {
	case err == nil:
		r.counted.Add(0, 1)
	case st == nfsc.NFS3ErrNoEnt:
	case (st == nfsc.NFS3ErrNotEmpty || st == nfsc.NFS3ErrExist || st == nfsc.NFS3ErrIO) && f.rmdirs < 3:
		f.rmdirs++
		return false, nil
	default:
		return false, err
	}
	f.dir.fh = nil
	return true, nil
}

func (r *remover) lookup(ctx context.Context, dir dirRef, name string) (dirRef, error) {
	return r.s.lookupIn(ctx, dir, name)
}

func (r *remover) removeFile(ctx context.Context, dir dirRef, name string) error {
	err := withCreds(ownerFirst(dir.attrs), func(cr *cred) error { return r.s.nfs.remove(ctx, dir.fh, name, cr) })
	switch statusOf(err) {
	case nfsc.NFS3ErrNoEnt, nfsc.NFS3ErrIsDir: // gone, or replaced by a directory the next listing finds
		return nil
	case 0:
		if err == nil {
			r.counted.Add(1, 0)
		}
	}
	return err
}

// removeFiles removes the non-directories of one listing page of d,
// several calls in flight.
func (r *remover) removeFiles(ctx context.Context, d dirRef, files []dirEntry) error {
	if len(files) <= 2 {
		for _, e := range files {
			if err := r.removeFile(ctx, d, e.name); err != nil {
				return fmt.Errorf("%s: %w", e.name, err)
			}
		}
		return nil
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < min(removeParallel, len(files)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				if err := r.removeFile(ctx, d, name); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("%s: %w", name, err)
					}
					mu.Unlock()
					cancel()
				}
			}
		}()
	}
feed:
	for _, e := range files {
		select {
		case work <- e.name:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if first != nil {
		return first
	}
	return parent.Err() // files were left unfed only if the caller gave up
}
