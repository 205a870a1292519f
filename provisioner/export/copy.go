package export

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sync"
	"sync/atomic"
)

// CopyOptions tune CopyTree.
type CopyOptions struct {
	// Files is how many files are copied at once (default 32); their calls overlap on the
	// connection, which is what makes many small files fast.
	Files int
	// Chunks bounds the chunks of data read or written at once over the whole copy (default
	// 16); memory is about (Files + Chunks) × the chunk size.
	Chunks int
	// ChunksPerFile is how many chunks of one large file are in flight (default 8).
	ChunksPerFile int
	// Progress, when not nil, is kept up to date while the copy runs.
	Progress *CopyProgress
	// Top, when not nil, is the owner and mode of the new directory at dst instead of the
	// source's (a new volume's top directory is its claim's).
	Top *DirAttrs
	// MaxBytes, when not 0, ends the copy with ErrTooBig once the files read hold more (by
	// their length: holes and hard links counted as what they read as).
	MaxBytes uint64
	// MaxEntries, when not 0, ends the copy with ErrTooManyEntries once it has made more
	// entries (a tree that grows faster than it is copied).
	MaxEntries uint64
}

// ErrTooBig ends a copy whose files hold more than CopyOptions.MaxBytes; ErrTooManyEntries one
// with more entries than CopyOptions.MaxEntries.
var (
	ErrTooBig         = errors.New("the source holds more than the copy may")
	ErrTooManyEntries = errors.New("the source has more entries than the copy may make")
)

// CopyProgress is a copy's running total, safe to read while it runs.
type CopyProgress struct {
	Files, Dirs, Symlinks, Bytes, Skipped atomic.Uint64
}

// Copied is a snapshot of a CopyProgress.
type Copied struct {
	Files, Dirs, Symlinks uint64
	Bytes                 uint64 // of file content
	Skipped               uint64 // devices, FIFOs, sockets: not copied
}

// Snapshot reads the counts.
func (p *CopyProgress) Snapshot() Copied {
	return Copied{Files: p.Files.Load(), Dirs: p.Dirs.Load(), Symlinks: p.Symlinks.Load(), Bytes: p.Bytes.Load(), Skipped: p.Skipped.Load()}
}

// CopyTree copies the tree at src on from into the new directory dst on to
// (whose parent must exist; anything at dst is ErrExist): directories,
// regular files (content, and holes where a chunk is all zeros), symbolic
// links as links (never followed), each with its mode, owner and times.
// Hard links become separate files; devices, FIFOs and sockets are skipped
// and counted. Directories are walked depth first, one listing page at a
// time with one frame per level (MaxUsageDepth at most), while up to
// o.Files files are copied concurrently and the chunks of a large file in
// parallel, so memory is bounded whatever the tree's size. A failed copy
// leaves a partial tree at dst: the caller removes it.
func CopyTree(ctx context.Context, from Tree, src string, to Tree, dst string, o CopyOptions) error {
	c, err := newCopier(ctx, from, to, o)
	if err != nil {
		return err
	}
	defer c.cancel()
	top, info, err := from.OpenDir(c.ctx, src)
	if err != nil {
		return fmt.Errorf("open the source %s: %w", src, err)
	}
	parent, _, err := to.OpenDir(c.ctx, path.Dir(dst))
	if err != nil {
		return fmt.Errorf("open the parent of %s: %w", dst, err)
	}
	if o.Top != nil {
		info.Mode, info.UID, info.GID = o.Top.Mode, o.Top.UID, o.Top.GID
	}
	made, err := to.Mkdir(c.ctx, parent, path.Base(dst), info)
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	c.progress.Dirs.Add(1)
	c.walk(&copyDir{src: top, dst: made, info: info, name: src})
	c.jobs.Wait()
	close(c.finish)
	<-c.finished
	return c.err()
}

type copier struct {
	ctx        context.Context
	cancel     context.CancelFunc
	from, to   Tree
	chunk      int
	perFile    int
	files      chan struct{} // a slot per file being copied
	chunks     chan struct{} // a slot per chunk in flight
	buffers    sync.Pool
	progress   *CopyProgress
	maxBytes   uint64
	maxEntries uint64
	jobs       sync.WaitGroup // file jobs
	finish     chan *copyDir  // directories whose listing is done, children first
	finished   chan struct{}
	errMu      sync.Mutex
	first      error
}

func newCopier(ctx context.Context, from, to Tree, o CopyOptions) (*copier, error) {
	chunk, err := ioSize(ctx, from, to)
	if err != nil {
		return nil, err
	}
	o.Files, o.Chunks, o.ChunksPerFile = orDefault(o.Files, 32), orDefault(o.Chunks, 16), orDefault(o.ChunksPerFile, 8)
	if o.Progress == nil {
		o.Progress = &CopyProgress{}
	}
	c := &copier{from: from, to: to, chunk: chunk, perFile: o.ChunksPerFile, progress: o.Progress, maxBytes: o.MaxBytes, maxEntries: o.MaxEntries,
		files: make(chan struct{}, o.Files), chunks: make(chan struct{}, o.Chunks),
		finish: make(chan *copyDir, o.Files), finished: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.buffers.New = func() any { b := make([]byte, chunk); return &b }
	go c.finishDirs()
	return c, nil
}

func orDefault(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// ioSize is the chunk both trees take: the largest power of two within both IOSizes.
func ioSize(ctx context.Context, trees ...Tree) (int, error) {
	limit := 1 << 20
	for _, t := range trees {
		n, err := t.IOSize(ctx)
		if err != nil {
			return 0, fmt.Errorf("ask the server's read and write sizes: %w", err)
		}
		limit = min(limit, n)
	}
	chunk := 4096
	for chunk*2 <= limit {
		chunk *= 2
	}
	return chunk, nil
}

// fail records the copy's first error and stops the rest of it.
func (c *copier) fail(err error) {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.first == nil {
		c.first = err
		c.cancel()
	}
}

func (c *copier) err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.first == nil {
		return c.ctx.Err() // nil unless the caller's context ended
	}
	return c.first
}

// copyDir is one directory being copied: the listing's cursor and the
// file jobs still writing into it.
type copyDir struct {
	src, dst Node
	info     FileInfo
	parent   *copyDir // nil for the top
	name     string   // its name in parent (the top: the source path); path() for errors
	cursor   DirCursor
	files    sync.WaitGroup
	pending  []*copyDir // subdirectories of the last page, made and still to walk
	listed   bool       // the listing reached its end
}

// path names the directory for an error message: its last few path elements below the copy's
// source, so that the message stays short (and its cost small) however deep the tree.
func (d *copyDir) path() string {
	const show = 3
	var names []string
	c := d
	for ; c.parent != nil && len(names) < show; c = c.parent {
		names = append(names, c.name)
	}
	if c.parent == nil && len(names) < show {
		names = append(names, c.name)
	}
	slices.Reverse(names)
	return TreePath(names, c.parent != nil)
}

// keepPagesAbove bounds the depth at which a directory keeps the subdirectories of a page to walk
// them one after the other (one listing page per level at most); deeper, the listing is read
// again after each subdirectory, so memory stays bounded whatever the depth.
const keepPagesAbove = 16

// walk copies the tree below top depth first: the subdirectories met in a
// listing page are made and walked before the next page of their parent's
// listing. A directory whose listing is done goes to the finisher (children
// before parents).
func (c *copier) walk(top *copyDir) {
	stack := []*copyDir{top}
	for len(stack) > 0 && c.ctx.Err() == nil {
		if len(stack) > MaxUsageDepth {
			c.fail(fmt.Errorf("%s: deeper than %d levels: %w", top.path(), MaxUsageDepth, ErrTooDeep))
			return
		}
		d := stack[len(stack)-1]
		if len(d.pending) > 0 {
			stack = append(stack, d.pending[0])
			d.pending = d.pending[1:]
			continue
		}
		if d.listed {
			stack = stack[:len(stack)-1]
			c.finish <- d
			continue
		}
		if err := c.copyPage(d, len(stack) <= keepPagesAbove); err != nil {
			c.fail(fmt.Errorf("%s: %w", d.path(), err))
			return
		}
	}
}

// copyPage reads one page of d's listing and starts copying its files and
// symlinks; its subdirectories are made and become d.pending, walked before
// the next page. Unless keep, the page ends at its first subdirectory and
// the listing is read again from there afterwards.
func (c *copier) copyPage(d *copyDir, keep bool) error {
	ents, next, eof, err := c.from.ReadDir(c.ctx, d.src, d.cursor)
	if err != nil {
		return fmt.Errorf("listing: %w", err)
	}
	for _, e := range ents {
		if n := c.progress.Snapshot(); c.maxEntries > 0 && n.Files+n.Dirs+n.Symlinks+n.Skipped > c.maxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrTooManyEntries, c.maxEntries)
		}
		d.cursor = e.Next
		switch e.Info.Type {
		case TypeDir:
			made, err := c.to.Mkdir(c.ctx, d.dst, e.Name, e.Info)
			if err != nil {
				return fmt.Errorf("make directory %s: %w", e.Name, err)
			}
			c.progress.Dirs.Add(1)
			d.pending = append(d.pending, &copyDir{src: e.Node, dst: made, info: e.Info, parent: d, name: e.Name})
			if !keep {
				return nil // the rest of the page is read again after this subdirectory
			}
		case TypeFile, TypeSymlink:
			c.start(d, e)
		default:
			c.progress.Skipped.Add(1)
		}
	}
	if !eof && len(ents) == 0 && next == d.cursor {
		return errors.New("the listing made no progress")
	}
	d.cursor, d.listed = next, eof
	return nil
}

// start copies a file or symlink of d in a job of its own, once a slot is free.
func (c *copier) start(d *copyDir, e DirEntry) {
	select {
	case c.files <- struct{}{}:
	case <-c.ctx.Done():
		return
	}
	c.jobs.Add(1)
	d.files.Add(1)
	go func() {
		defer func() { <-c.files; d.files.Done(); c.jobs.Done() }()
		var err error
		if e.Info.Type == TypeSymlink {
			err = c.copySymlink(d, e)
		} else {
			err = c.copyFile(d, e)
		}
		if err != nil {
			c.fail(fmt.Errorf("%s/%s: %w", d.path(), e.Name, err))
		}
	}()
}

func (c *copier) copySymlink(d *copyDir, e DirEntry) error {
	target, err := c.from.ReadLink(c.ctx, e.Node)
	if err != nil {
		return fmt.Errorf("read link: %w", err)
	}
	if err := c.to.Symlink(c.ctx, d.dst, e.Name, target, e.Info); err != nil {
		return fmt.Errorf("make link: %w", err)
	}
	c.progress.Symlinks.Add(1)
	return nil
}

// copyFile copies one regular file: one read (and write) when it fits in a
// chunk, else its chunks in parallel, then what follows the size it had
// when listed, until the end.
func (c *copier) copyFile(d *copyDir, e DirEntry) error {
	f, err := c.to.Create(c.ctx, d.dst, e.Name, e.Info)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	n, eof, err := c.copyChunk(e.Node, f, 0)
	size := uint64(n)
	if err == nil && !eof {
		var planned uint64
		planned, err = c.copyChunks(e.Node, f, e.Info.Size)
		size = max(size, planned)
		for err == nil && !eof {
			n, eof, err = c.copyChunk(e.Node, f, size)
			if n == 0 && !eof && err == nil {
				err = errors.New("a read returned nothing before the end of the file")
			}
			size += uint64(n)
		}
	}
	if err != nil {
		return err
	}
	info := e.Info
	info.Size = size
	if err := c.to.Finish(c.ctx, f, info); err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	c.progress.Files.Add(1)
	return nil
}

// copyChunks copies the chunks after the first up to size, ChunksPerFile at once, and returns the
// end of what they read.
func (c *copier) copyChunks(from, to Node, size uint64) (uint64, error) {
	n := (size + uint64(c.chunk) - 1) / uint64(c.chunk)
	var next atomic.Uint64
	next.Store(1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var end uint64
	var first error
	for w := 0; w < c.perFile && uint64(w+1) < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < n && c.ctx.Err() == nil; i = next.Add(1) - 1 {
				off := i * uint64(c.chunk)
				n, _, err := c.copyChunk(from, to, off)
				mu.Lock()
				if n > 0 {
					end = max(end, off+uint64(n))
				}
				if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = c.ctx.Err()
	}
	return end, first
}

// copyChunk copies the chunk at off (a write is skipped when it is all
// zeros: a hole) and returns how much it read.
func (c *copier) copyChunk(from, to Node, off uint64) (n int, eof bool, err error) {
	select {
	case c.chunks <- struct{}{}:
	case <-c.ctx.Done():
		return 0, false, c.ctx.Err()
	}
	defer func() { <-c.chunks }()
	bp := c.buffers.Get().(*[]byte)
	defer c.buffers.Put(bp)
	// A server may answer a READ with less than asked before the end of the file (RFC 1813):
	// the chunk is read on until it is full or the file ends.
	for n < len(*bp) && !eof {
		var got int
		got, eof, err = c.from.ReadAt(c.ctx, from, (*bp)[n:], off+uint64(n))
		if err != nil {
			return 0, false, fmt.Errorf("read at %d: %w", off+uint64(n), err)
		}
		if got == 0 && !eof {
			return 0, false, fmt.Errorf("read at %d: the server returned nothing before the end of the file", off+uint64(n))
		}
		n += got
	}
	if total := c.progress.Bytes.Add(uint64(n)); c.maxBytes > 0 && total > c.maxBytes {
		return 0, false, fmt.Errorf("%w: more than %d bytes", ErrTooBig, c.maxBytes)
	}
	p := (*bp)[:n]
	if !allZero(p) {
		if err := c.to.WriteAt(c.ctx, to, p, off, off == 0 && eof); err != nil {
			return 0, false, fmt.Errorf("write at %d: %w", off, err)
		}
	}
	return n, eof, nil
}

func allZero(p []byte) bool {
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

// finishDirs gives each directory its mode and times once its files are
// written, in the order their listings ended: children before parents, so
// a read-only directory is made so after everything inside it.
func (c *copier) finishDirs() {
	defer close(c.finished)
	for d := range c.finish {
		d.files.Wait()
		if c.ctx.Err() != nil {
			continue
		}
		if err := c.to.Finish(c.ctx, d.dst, d.info); err != nil {
			c.fail(fmt.Errorf("%s: finish: %w", d.path(), err))
		}
	}
}
