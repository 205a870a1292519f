package wire

import (
	"context"
	"fmt"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// How a removal overlaps its round trips on the one connection: REMOVE calls in flight while
// emptying one directory, and subtrees removed at once besides the walk.
const (
	removeParallel = 8
	parallelTrees  = 4
)

// RemoveAll implements export.FS with export.RemoveAll over handles: an empty directory costs one
// RMDIR with its parent's handle cached; a tree is listed with READDIRPLUS (handles and types in
// one call, no LOOKUP to descend), at most Options.RemoveStackDepth levels at a time. Work inside
// a directory is done as its owner (a user's tree on a root_squash export is writable only by its
// owners), falling back to root; a directory its owner may not read or write is first made u+rwx.
// A removal that met a stale handle is run once more after a refresh, its count going on.
func (f *FS) RemoveAll(ctx context.Context, p string, progress func(export.Removed)) error {
	counted := export.NewRemoveProgress(progress)
	o := export.RemoveOptions{MaxDepth: f.s.o.RemoveStackDepth, Subtrees: parallelTrees, Files: removeParallel, Progress: counted}
	err := f.s.retry(ctx, func() error { return export.RemoveAll(ctx, removeTree{f.s}, p, o) })
	counted.Report(true)
	if elems, serr := export.SplitPath(p, false); serr == nil {
		f.s.forget(elems)
	}
	if err != nil {
		return f.errorf("remove", p, err)
	}
	return nil
}

// removeTree is export.RemoveTree on a session: a node is a dirRef (a handle and its attributes).
type removeTree struct{ s *session }

func (t removeTree) Parent(ctx context.Context, p string) (export.Node, error) {
	elems, err := export.SplitPath(p, false)
	if err != nil {
		return nil, err
	}
	ref, err := t.s.dirAt(ctx, elems[:len(elems)-1])
	if err != nil {
		return nil, err
	}
	return ref, nil
}

func (t removeTree) Open(ctx context.Context, dir export.Node, name string, ent *export.RemoveEntry) (export.Node, bool, error) {
	parent, err := refOf(dir)
	if err != nil {
		return nil, false, err
	}
	var ref dirRef
	if ent != nil && ent.Node != nil {
		ref = ent.Node.(dirRef)
	} else if ref, err = t.s.lookupIn(ctx, parent, name); err != nil {
		return nil, false, err
	}
	if !ref.attrs.isDir() {
		return nil, false, nil
	}
	// The owner (or root) may always chmod its directory: make it listable and emptiable.
	if ref.attrs.mode&0o700 != 0o700 {
		sa := sattr{mode: ref.attrs.mode | 0o700}
		if err := withCreds(ownerFirst(ref.attrs), func(cr *cred) error { return t.s.nfs.setattr(ctx, ref.fh, sa, cr) }); err == nil {
			ref.attrs.mode = sa.mode
		}
	}
	return ref, true, nil
}

func (t removeTree) List(ctx context.Context, dir export.Node, at export.DirCursor) ([]export.RemoveEntry, export.DirCursor, bool, error) {
	ref, err := refOf(dir)
	if err != nil {
		return nil, at, false, err
	}
	var ents []dirEntry
	var verf [8]byte
	var eof bool
	err = withCreds(ownerFirst(ref.attrs), func(cr *cred) (err error) {
		ents, verf, eof, err = t.s.nfs.readdirPage(ctx, ref.fh, at.Cookie, at.Verifier, cr)
		return err
	})
	if st := statusOf(err); st == nfsc.NFS3ErrBadCookie || st == nfsc.NFS3ErrNotSync {
		return nil, export.DirCursor{}, false, nil // the listing changed under us: start over
	}
	if err != nil {
		return nil, at, false, err
	}
	out := make([]export.RemoveEntry, 0, len(ents))
	next := at
	for _, e := range ents {
		next = export.DirCursor{Cookie: e.cookie, Verifier: verf}
		if e.name == "." || e.name == ".." {
			continue
		}
		re := export.RemoveEntry{Name: e.name, Dir: !e.haveAttrs || e.attrs.isDir(), Next: next}
		if e.fh != nil && e.haveAttrs {
			re.Node = dirRef{fh: e.fh, attrs: e.attrs}
		}
		out = append(out, re)
	}
	return out, next, eof, nil
}

// asOwner runs call on the directory dir as its owner, then as root.
func asOwner(dir export.Node, call func(fh []byte, cr *cred) error) error {
	ref, err := refOf(dir)
	if err != nil {
		return err
	}
	return withCreds(ownerFirst(ref.attrs), func(cr *cred) error { return call(ref.fh, cr) })
}

func (t removeTree) Unlink(ctx context.Context, dir export.Node, name string) error {
	err := asOwner(dir, func(fh []byte, cr *cred) error { return t.s.nfs.remove(ctx, fh, name, cr) })
	if statusOf(err) == nfsc.NFS3ErrIsDir {
		return fmt.Errorf("%w: %w", export.ErrIsDir, err)
	}
	return err // NFS3ERR_NOENT is export.ErrNotExist
}

func (t removeTree) Rmdir(ctx context.Context, dir export.Node, name string) error {
	err := asOwner(dir, func(fh []byte, cr *cred) error { return t.s.nfs.rmdir(ctx, fh, name, cr) })
	switch statusOf(err) {
	case nfsc.NFS3ErrNotEmpty, nfsc.NFS3ErrExist, nfsc.NFS3ErrIO: // IO: some servers say ENOTEMPTY so
		return fmt.Errorf("%w: %w", export.ErrNotEmpty, err)
	case nfsc.NFS3ErrNotDir:
		return fmt.Errorf("%w: %w", export.ErrNotDir, err)
	}
	return err
}

func (removeTree) Close(export.Node) {}
