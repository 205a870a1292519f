package export

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
)

// ErrNotEmpty is matched by the error of a Rmdir of a directory that still holds entries;
// ErrIsDir by that of an Unlink of a directory.
var (
	ErrNotEmpty = errors.New("directory not empty")
	ErrIsDir    = errors.New("is a directory")
)

// RemoveTree is what RemoveTree (the streaming removal every backend's RemoveAll runs) needs of a
// backend: directories opened by handle or descriptor on the way down, one listing page at a time,
// and the removal of one entry by its name in a directory. Names are single path elements; no
// operation follows a symbolic link. Implementations are safe for concurrent use.
type RemoveTree interface {
	// Parent opens the directory holding the last element of p (a path as in FS, not the root);
	// ErrNotExist when it is gone.
	Parent(ctx context.Context, p string) (Node, error)
	// Open opens the directory name in dir for removal, making it listable and emptiable by its
	// owner when it is not. ent, when not nil, is what dir's listing said of it (it may spare a
	// lookup). isDir false, nothing opened, when name is not a directory; ErrNotExist when gone.
	Open(ctx context.Context, dir Node, name string, ent *RemoveEntry) (child Node, isDir bool, err error)
	// List reads one page of dir's listing from at, "." and ".." left out. A listing the server
	// restarted (a stale cookie) is a page of no entries with the zero cursor as next.
	List(ctx context.Context, dir Node, at DirCursor) (ents []RemoveEntry, next DirCursor, eof bool, err error)
	// Unlink removes the non-directory name from dir: ErrNotExist when it is gone, ErrIsDir when
	// it is a directory now (the next listing finds it).
	Unlink(ctx context.Context, dir Node, name string) error
	// Rmdir removes the directory name from dir: ErrNotExist when gone, ErrNotDir when it is not a
	// directory, ErrNotEmpty when it holds entries.
	Rmdir(ctx context.Context, dir Node, name string) error
	// Close releases a node Parent or Open returned.
	Close(n Node)
}

// RemoveEntry is one entry of a listing for RemoveTree.
type RemoveEntry struct {
	Name string
	// Dir is true for a directory, and for an entry whose type the listing did not say (Open
	// tells).
	Dir  bool
	Node Node // the backend's own, when the listing gave one (an NFS handle)
	Next DirCursor
}

// RemoveOptions tune RemoveAll.
type RemoveOptions struct {
	// MaxDepth bounds the open directories of one walk (default 128); a deeper tree is finished
	// by walking again from the top, so memory is bounded by the depth, never by the tree.
	MaxDepth int
	// Subtrees is how many subtrees are removed at once besides the walk itself (default 0), so
	// that the round trips of many small directories overlap.
	Subtrees int
	// Files is how many entries of one page are removed at once (default 1).
	Files int
	// Progress counts what is removed (from any goroutine) and tells the caller's progress
	// function; the caller makes its final report. One counter may serve several calls (a retry
	// continues the count).
	Progress *RemoveProgress
}

const (
	// maxPendingDirs bounds the subdirectories remembered from one listing page; the rest are
	// found again by the next listing.
	maxPendingDirs = 16
	// maxIdleListings bounds the listings of one directory in a row that remove nothing (entries
	// the listing shows but that are gone, as a stale cache or a server disagreeing with itself
	// can show): the removal fails instead of spinning.
	maxIdleListings = 8
	// maxRmdirRefusals bounds the RMDIRs of one directory refused as not empty (someone writes
	// into it meanwhile) before the removal gives up.
	maxRmdirRefusals = 3
)

// RemoveAll removes p and everything below it on t; a missing p is not an error, the export root
// cannot be removed. An empty directory costs one Rmdir. A tree is removed depth first, one
// listing page at a time, with an explicit stack of at most o.MaxDepth open directories, so memory
// stays bounded whatever the number of entries and the depth of the tree; what was removed stays
// removed when it fails, so a retry continues. o.Progress, when not nil, is told the running total
// now and then, from the calling goroutine.
func RemoveAll(ctx context.Context, t RemoveTree, p string, o RemoveOptions) error {
	elems, err := SplitPath(p, true)
	if err != nil {
		return err
	}
	if len(elems) == 0 {
		return fmt.Errorf("the export root cannot be removed: %w", ErrInvalidPath)
	}
	parent, err := t.Parent(ctx, p)
	if errors.Is(err, ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer t.Close(parent)
	counted := o.Progress
	if counted == nil {
		counted = NewRemoveProgress(nil)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &remover{t: t, counted: counted, maxDepth: orDefault(o.MaxDepth, 128), parallel: orDefault(o.Files, 1), stop: cancel}
	if o.Subtrees > 0 {
		r.trees = make(chan struct{}, o.Subtrees)
	}
	return r.removeAll(ctx, parent, elems[len(elems)-1])
}

// remover is one RemoveAll: its running total and its bounds.
type remover struct {
	t        RemoveTree
	counted  *RemoveProgress
	maxDepth int
	parallel int
	trees    chan struct{}      // slots for subtrees removed concurrently (nil: none)
	stop     context.CancelFunc // ends the subtrees still running when the walk fails
}

func (r *remover) removeAll(ctx context.Context, parent Node, name string) error {
	// The common case first: an empty directory goes with one Rmdir.
	err := r.t.Rmdir(ctx, parent, name)
	switch {
	case err == nil:
		r.counted.Add(0, 1)
		return nil
	case errors.Is(err, ErrNotExist):
		return nil
	case errors.Is(err, ErrNotDir):
		return r.unlink(ctx, parent, name)
	case !errors.Is(err, ErrNotEmpty):
		return err
	}
	return r.removeTree(ctx, parent, name, true)
}

// unlink removes the non-directory name from dir and counts it when it was there to remove.
func (r *remover) unlink(ctx context.Context, dir Node, name string) error {
	err := r.t.Unlink(ctx, dir, name)
	switch {
	case err == nil:
		r.counted.Add(1, 0)
		return nil
	case errors.Is(err, ErrNotExist) || errors.Is(err, ErrIsDir):
		return nil // gone, or a directory the next listing finds
	}
	return err
}

// frame is one open directory on the way down: its parent (to Rmdir it once empty), its name
// there, itself, where its listing goes on, and a few subdirectories seen in its last page.
type frame struct {
	parent   Node
	name     string
	dir      Node // nil once removed
	cursor   DirCursor
	pending  []RemoveEntry
	emptied  bool // its whole listing was removed: Rmdir it without listing again
	skipped  bool // entries were left for a later listing since the cursor was last reset
	rmdirs   int  // Rmdirs refused as not empty
	idle     int  // listings in a row after which nothing was removed
	seen     Removed
	subtrees sync.WaitGroup
	subMu    sync.Mutex
	subErr   error // the first error of a subtree removed concurrently
}

// removeTree empties and removes the directory name in parent, depth first. When the stack
// would grow past maxDepth its bottom frame is dropped (its directory stays open as the parent of
// the frame above it); once the stack is empty the walk starts again from the top, and the tree is
// smaller each time.
func (r *remover) removeTree(ctx context.Context, parent Node, name string, reporting bool) error {
	for {
		top, isDir, err := r.t.Open(ctx, parent, name, nil)
		if errors.Is(err, ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !isDir {
			return r.unlink(ctx, parent, name)
		}
		truncated, err := r.walk(ctx, &frame{parent: parent, name: name, dir: top}, reporting)
		if err != nil || !truncated {
			return err
		}
	}
}

// walk removes the tree of top (whose directory it owns), reporting whether its stack was
// truncated (the caller walks again from the top).
func (r *remover) walk(ctx context.Context, top *frame, reporting bool) (truncated bool, err error) {
	stack := []*frame{top}
	var base Node // the directory of the last frame dropped from the bottom
	defer func() {
		if err != nil && reporting {
			r.stop() // the walk failed: the subtrees waited for below end at once
		}
		for _, f := range stack {
			r.closeFrame(f)
		}
		if base != nil {
			r.t.Close(base)
		}
	}()
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return truncated, err
		}
		f := stack[len(stack)-1]
		child, err := r.step(ctx, f)
		if err != nil {
			return truncated, fmt.Errorf("%s: %w", framePath(stack, truncated), err)
		}
		switch {
		case child != nil && len(stack) == r.maxDepth:
			bottom := stack[0]
			bottom.subtrees.Wait() // its directory is the parent of what they remove
			if bottom.subErr != nil {
				return truncated, bottom.subErr
			}
			if base != nil {
				r.t.Close(base)
			}
			base, bottom.dir = bottom.dir, nil
			stack = append(stack[1:], child)
			truncated = true
		case child != nil:
			stack = append(stack, child)
		case f.dir == nil: // removed
			stack = stack[:len(stack)-1]
		}
		if reporting { // progress is told from the caller's goroutine only
			r.counted.Report(false)
		}
	}
	return truncated, nil
}

func (r *remover) closeFrame(f *frame) {
	f.subtrees.Wait()
	if f.dir != nil {
		r.t.Close(f.dir)
		f.dir = nil
	}
}

// framePath names the directory at the top of the stack for an error message: its last few
// components, so the message stays short however deep the tree.
func framePath(stack []*frame, truncated bool) string {
	names := make([]string, 0, 3)
	for _, f := range stack[max(0, len(stack)-3):] {
		names = append(names, f.name)
	}
	return TreePath(names, truncated || len(stack) > 3)
}

// step does one unit of work on f: it returns a subdirectory to descend into, or removes one
// page of f's entries, or — when f is empty — removes f itself (and clears f.dir).
func (r *remover) step(ctx context.Context, f *frame) (*frame, error) {
	r.handOutSubtrees(ctx, f)
	if child, err := r.nextPending(ctx, f); child != nil || err != nil {
		return child, err
	}
	// The subtrees handed out must be gone before this directory is listed again or removed.
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

// handOutSubtrees gives pending subdirectories of f (all but the last) to goroutines while tree
// slots are free.
func (r *remover) handOutSubtrees(ctx context.Context, f *frame) {
	for r.trees != nil && len(f.pending) > 1 {
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
			if err := r.removeTree(ctx, f.dir, e.Name, false); err != nil {
				f.subMu.Lock()
				if f.subErr == nil {
					f.subErr = fmt.Errorf("%s: %w", e.Name, err)
				}
				f.subMu.Unlock()
			}
		}()
	}
}

// nextPending opens the next pending subdirectory of f to descend into; entries gone since the
// listing are skipped and ones that are no longer directories removed.
func (r *remover) nextPending(ctx context.Context, f *frame) (*frame, error) {
	for len(f.pending) > 0 {
		e := f.pending[0]
		f.pending = f.pending[1:]
		child, isDir, err := r.t.Open(ctx, f.dir, e.Name, &e)
		switch {
		case errors.Is(err, ErrNotExist):
			continue
		case err != nil:
			return nil, fmt.Errorf("%s: %w", e.Name, err)
		case !isDir: // replaced since the listing
			if err := r.unlink(ctx, f.dir, e.Name); err != nil {
				return nil, err
			}
			continue
		}
		return &frame{parent: f.dir, name: e.Name, dir: child}, nil
	}
	return nil, nil
}

// checkProgress fails a directory whose whole listing keeps showing entries while nothing
// anywhere gets removed (entries that cannot be found or removed), instead of listing it forever.
func (r *remover) checkProgress(f *frame) error {
	done := r.counted.Done()
	if done == f.seen && f.cursor == (DirCursor{}) {
		if f.idle++; f.idle > maxIdleListings {
			return Answered(fmt.Errorf("listing keeps showing entries that cannot be found or removed"))
		}
	} else if done != f.seen {
		f.idle, f.seen = 0, done
	}
	return nil
}

// removePage reads one page of f's listing, removes its non-directories, keeps its
// subdirectories for later (up to maxPendingDirs) and moves f's cursor; when the listing is empty
// it removes f itself.
func (r *remover) removePage(ctx context.Context, f *frame) error {
	ents, next, eof, err := r.t.List(ctx, f.dir, f.cursor)
	if err != nil {
		return fmt.Errorf("listing: %w", err)
	}
	if len(ents) == 0 && !eof && next == (DirCursor{}) && f.cursor != (DirCursor{}) {
		f.cursor = DirCursor{} // the listing changed under us: start over
		return nil
	}
	var files []string
	for _, e := range ents {
		switch {
		case !e.Dir:
			files = append(files, e.Name)
		case len(f.pending) < maxPendingDirs:
			f.pending = append(f.pending, e)
		default:
			f.skipped = true
		}
	}
	if err := r.removeFiles(ctx, f.dir, files); err != nil {
		return err
	}
	switch {
	case len(files) > 0 || len(f.pending) > 0:
		// Entries went: the next page starts from the beginning again, which lists only what is
		// left. When this page was the whole listing and only files were on it, the directory is
		// empty now: Rmdir it first, list again only if that fails.
		f.emptied = eof && f.cursor == (DirCursor{}) && len(f.pending) == 0 && !f.skipped
		f.cursor, f.skipped = DirCursor{}, false
		return nil
	case !eof:
		// Nothing to remove on this page (only directories beyond the pending bound, or no
		// entries at all): read on.
		if next == f.cursor {
			return Answered(fmt.Errorf("the listing made no progress"))
		}
		f.cursor = next
		return nil
	case f.skipped:
		// The end, but directories were left before where this page began.
		f.cursor, f.skipped = DirCursor{}, false
		return nil
	}
	_, err = r.rmdirFrame(ctx, f)
	return err
}

// rmdirFrame removes the (empty) directory of f from its parent and reports whether it is gone;
// one refused as not empty (written into since it was listed) is left to be emptied again, a few
// times.
func (r *remover) rmdirFrame(ctx context.Context, f *frame) (removed bool, err error) {
	err = r.t.Rmdir(ctx, f.parent, f.name)
	switch {
	case err == nil:
		r.counted.Add(0, 1)
	case errors.Is(err, ErrNotExist):
	case errors.Is(err, ErrNotEmpty) && f.rmdirs < maxRmdirRefusals:
		f.rmdirs++
		return false, nil
	default:
		return false, err
	}
	r.t.Close(f.dir)
	f.dir = nil
	return true, nil
}

// removeFiles removes the non-directories of one listing page of dir, r.parallel at once; the
// first failure stops the rest.
func (r *remover) removeFiles(ctx context.Context, dir Node, files []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.parallel)
	for _, name := range files {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := r.unlink(gctx, dir, name); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err() // files were left out only if the caller gave up
}
