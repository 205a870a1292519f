package wire

import (
	"context"
	"errors"
	"fmt"
	"sync"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/provisioner/provisioner/export"
)

// maxDepth bounds the recursion of RemoveAll into a tree.
const maxDepth = 512

// removeParallel bounds the REMOVE calls in flight (pipelined on the one
// connection) while emptying one directory.
const removeParallel = 8

// RemoveAll removes p and everything below it; a missing p is not an
// error. An empty directory costs one RMDIR round trip with its parent's
// handle cached. Work inside a directory is done as its owner (a user's
// tree on a root_squash export is writable only by its owners), falling
// back to root; a directory its owner may not read or write is first
// made u+rwx.
func (f *FS) RemoveAll(ctx context.Context, p string) error {
	elems, err := splitPath(p)
	if err == nil && len(elems) == 0 {
		err = fmt.Errorf("the export root cannot be removed: %w", export.ErrInvalidPath)
	}
	if err == nil {
		err = f.s.retry(ctx, func() error { return f.s.removeAll(ctx, elems) })
	}
	if err != nil {
		return f.errorf("remove", p, err)
	}
	return nil
}

func (s *session) removeAll(ctx context.Context, elems []string) error {
	parent, err := s.dirAt(ctx, elems[:len(elems)-1])
	if errors.Is(err, export.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = s.removeName(ctx, parent, elems[len(elems)-1], nil, 0)
	s.cache.forget(elems)
	return err
}

// removeName removes name from dir: RMDIR first (an empty directory, the
// common case), then REMOVE for a non-directory, or empty the directory
// and RMDIR again. child is the entry's handle when already known.
func (s *session) removeName(ctx context.Context, dir dirRef, name string, child *dirRef, depth int) error {
	creds := ownerFirst(dir.attrs)
	var rmdirErr error
	for round := 0; ; round++ {
		if child == nil || !child.attrs.isDir() || round > 0 {
			err := withCreds(creds, func(cr *cred) error { return s.rmdir(ctx, dir.fh, name, cr) })
			rmdirErr = err
			switch statusOf(err) {
			case 0:
				if err == nil {
					return nil
				}
				return err
			case nfsc.NFS3ErrNoEnt:
				return nil
			case nfsc.NFS3ErrNotDir:
				return s.removeFile(ctx, dir, name, creds)
			case nfsc.NFS3ErrNotEmpty, nfsc.NFS3ErrExist, nfsc.NFS3ErrIO:
				// IO: some servers report ENOTEMPTY that way; look closer.
			default:
				return err
			}
			if child == nil {
				err := withCreds(creds, func(cr *cred) error {
					ref, err := s.lookup(ctx, dir.fh, name, cr)
					child = &ref
					return err
				})
				if statusOf(err) == nfsc.NFS3ErrNoEnt {
					return nil
				}
				if err != nil {
					return err
				}
			}
			if !child.attrs.isDir() {
				return s.removeFile(ctx, dir, name, creds)
			}
		}
		if round == 3 {
			return fmt.Errorf("%s: directory still not empty after emptying it %d times: %w", name, round, rmdirErr)
		}
		if err := s.emptyDir(ctx, *child, depth+1); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
}

func (s *session) removeFile(ctx context.Context, dir dirRef, name string, creds []*cred) error {
	err := withCreds(creds, func(cr *cred) error { return s.remove(ctx, dir.fh, name, cr) })
	if statusOf(err) == nfsc.NFS3ErrNoEnt {
		return nil
	}
	return err
}

// emptyDir removes everything in d.
func (s *session) emptyDir(ctx context.Context, d dirRef, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("tree deeper than %d levels", maxDepth)
	}
	creds := ownerFirst(d.attrs)
	if d.attrs.mode&0o700 != 0o700 {
		// Its owner (or root) may always chmod it; it is about to go.
		sa := sattr{mode: d.attrs.mode | 0o700}
		if err := withCreds(creds, func(cr *cred) error { return s.setattr(ctx, d.fh, sa, cr) }); err == nil {
			d.attrs.mode = sa.mode
		}
	}
	var ents []dirEntry
	err := withCreds(creds, func(cr *cred) (err error) {
		ents, err = s.readdir(ctx, d.fh, cr)
		return err
	})
	if err != nil {
		return fmt.Errorf("listing: %w", err)
	}
	var files, others []*dirEntry
	for i := range ents {
		e := &ents[i]
		if e.haveAttrs && !e.attrs.isDir() {
			files = append(files, e)
		} else {
			others = append(others, e)
		}
	}
	if err := s.removeFiles(ctx, d, files, creds, depth); err != nil {
		return err
	}
	for _, e := range others {
		var child *dirRef
		if e.haveAttrs && e.fh != nil {
			child = &dirRef{fh: e.fh, attrs: e.attrs}
		}
		if err := s.removeName(ctx, d, e.name, child, depth); err != nil {
			return err
		}
	}
	return nil
}

// removeFiles removes the non-directories of d, several calls in flight.
func (s *session) removeFiles(ctx context.Context, d dirRef, files []*dirEntry, creds []*cred, depth int) error {
	one := func(ctx context.Context, e *dirEntry) error {
		err := s.removeFile(ctx, d, e.name, creds)
		if statusOf(err) == nfsc.NFS3ErrIsDir { // replaced by a directory since the listing
			err = s.removeName(ctx, d, e.name, nil, depth)
		}
		return err
	}
	if len(files) <= 2 {
		for _, e := range files {
			if err := one(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *dirEntry)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < min(removeParallel, len(files)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range work {
				if err := one(ctx, e); err != nil {
					mu.Lock()
					if first == nil {
						first = err
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
		case work <- e:
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
