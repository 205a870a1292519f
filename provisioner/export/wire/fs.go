package wire

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// FS is one export on one server, reached over NFSv3 or NFSv4.1. It implements
// export.FS and is safe for concurrent use. FSs of one Opener share
// sessions: Close the Opener, not the FS.
type FS struct {
	s *session
}

var _ export.FS = (*FS)(nil)

// Version is the protocol the export is spoken to with: Version3 or Version41.
func (f *FS) Version() Version { return f.s.version }

// NFSVersion is Version for export.VersionOf.
func (f *FS) NFSVersion() export.Version { return export.Version(f.s.version) }

func (f *FS) errorf(op, p string, err error) error {
	return fmt.Errorf("%s %s on %s:%s: %w", op, p, f.s.server, f.s.share, err)
}

// errParentGone marks an operation that found its cached parent handle
// gone; like a stale handle it is retried after the cache is refreshed.
var errParentGone = &StatusError{Status: nfsc.NFS3ErrStale}

// MkdirAll creates dir and its missing parents, owned by attrs.UID/GID
// with mode attrs.Mode. With the parent's handle cached this is one MKDIR
// round trip, owner and mode carried in its attributes.
func (f *FS) MkdirAll(ctx context.Context, dir string, a export.DirAttrs) error {
	elems, err := export.SplitPath(dir, true)
	if err != nil {
		return f.errorf("mkdir", dir, err)
	}
	if len(elems) == 0 {
		return nil // the root exists and is a directory
	}
	sa := sattr{mode: uint32(a.Mode) & 0o7777, uid: a.UID, gid: a.GID, setOwner: true}
	err = f.s.retry(ctx, func() error { return f.s.mkdirAll(ctx, elems, sa) })
	if err != nil {
		return f.errorf("mkdir", dir, err)
	}
	return nil
}

// Mkdir creates dir exclusively: one MKDIR round trip with the parent's
// handle cached. Anything already at dir is ErrExist, and nothing is
// changed.
func (f *FS) Mkdir(ctx context.Context, dir string, a export.DirAttrs) error {
	elems, err := export.SplitPath(dir, true)
	if err == nil && len(elems) == 0 {
		err = fmt.Errorf("the export root exists: %w", export.ErrExist)
	}
	if err == nil {
		sa := sattr{mode: uint32(a.Mode) & 0o7777, uid: a.UID, gid: a.GID, setOwner: true}
		err = f.s.retry(ctx, func() error {
			parent, err := f.s.dirAt(ctx, elems[:len(elems)-1])
			if err != nil {
				return err
			}
			_, err = f.s.mkdirOne(ctx, parent, elems, sa, true)
			return err
		})
	}
	if err != nil {
		return f.errorf("mkdir", dir, err)
	}
	return nil
}

// SetAttrs sets the owner and mode of the directory at dir with one
// SETATTR (after a LOOKUP unless its handle is cached), as its owner and
// then as root.
func (f *FS) SetAttrs(ctx context.Context, dir string, a export.DirAttrs) error {
	elems, err := export.SplitPath(dir, true)
	if err == nil {
		err = f.s.retry(ctx, func() error {
			ref, err := f.s.dirAt(ctx, elems)
			if err != nil {
				return err
			}
			sa := sattr{mode: uint32(a.Mode) & 0o7777, uid: a.UID, gid: a.GID, setOwner: true}
			err = withCreds(ownerFirst(ref.attrs), func(cr *cred) error { return f.s.nfs.setattr(ctx, ref.fh, sa, cr) })
			f.s.forget(elems) // its cached attributes are old now
			return err
		})
	}
	if err != nil {
		return f.errorf("setattr", dir, err)
	}
	return nil
}

func (s *session) mkdirAll(ctx context.Context, elems []string, sa sattr) error {
	if _, i := s.cache.deepest(elems); i == len(elems) {
		return nil // known to exist (a stale entry costs a retry later)
	}
	parent, i := s.cache.deepest(elems[:len(elems)-1])
	for ; i < len(elems)-1; i++ {
		ref, err := s.lookupDir(ctx, parent, elems[:i+1])
		if errors.Is(err, export.ErrNotExist) {
			break
		}
		if err != nil {
			return err
		}
		parent = ref
	}
	for ; i < len(elems); i++ {
		ref, err := s.mkdirOne(ctx, parent, elems[:i+1], sa, false)
		if err != nil {
			return err
		}
		parent = ref
	}
	return nil
}

// mkdirOne creates the last element of path in parent, or finds it there
// (exclusive: fails with NFS3ERR_EXIST).
func (s *session) mkdirOne(ctx context.Context, parent dirRef, path []string, sa sattr, exclusive bool) (dirRef, error) {
	name := path[len(path)-1]
	var ref dirRef
	err := withCreds(mkdirCreds(parent.attrs, sa.uid, sa.gid), func(cr *cred) (err error) {
		ref, err = s.mkdirExact(ctx, parent, name, sa, cr)
		return err
	})
	switch statusOf(err) {
	case 0:
		if err != nil {
			return dirRef{}, err
		}
		s.cache.put(path, ref)
		return ref, nil
	case nfsc.NFS3ErrExist:
		if exclusive {
			return dirRef{}, err // a repeat's error matches export.ErrMaybeDone
		}
		return s.lookupDir(ctx, parent, path)
	case nfsc.NFS3ErrNoEnt:
		s.cache.forget(path[:len(path)-1])
		return dirRef{}, errParentGone
	case nfsc.NFS3ErrAcces, nfsc.NFS3ErrPerm:
		// Some servers check permission before existence (go-nfs answers
		// ACCES for a file in the way): an existing directory is fine, an
		// existing file is NOTDIR, anything else keeps the denial.
		ref, lerr := s.lookupDir(ctx, parent, path)
		switch {
		case (lerr == nil || statusOf(lerr) == nfsc.NFS3ErrNotDir) && exclusive:
			return dirRef{}, &StatusError{Status: nfsc.NFS3ErrExist} // something is there, which is all Mkdir reports
		case lerr == nil:
			return ref, nil
		case statusOf(lerr) == nfsc.NFS3ErrNotDir:
			return dirRef{}, lerr
		}
	}
	return dirRef{}, err
}

// mkdirExact makes name in parent as cr, with exactly the mode and owner
// of sa: mkdir(2) ignores setgid (it is inherited) and some servers apply
// a umask, so a SETATTR follows when the server's attributes differ.
func (s *session) mkdirExact(ctx context.Context, parent dirRef, name string, sa sattr, cr *cred) (dirRef, error) {
	fh, a, ok, err := s.nfs.mkdir(ctx, parent.fh, name, sa, cr)
	if err != nil {
		return dirRef{}, err
	}
	if fh == nil { // the server may omit the handle
		r, err := s.nfs.lookup(ctx, parent.fh, name, cr)
		if err != nil {
			return dirRef{}, err
		}
		fh, a, ok = r.fh, r.attrs, true
	}
	if !ok {
		a = attrs{typ: nf3Dir, mode: sa.mode &^ 0o7000, uid: sa.uid, gid: sa.gid}
	}
	if a.mode != sa.mode || a.uid != sa.uid || a.gid != sa.gid {
		if err := s.nfs.setattr(ctx, fh, sa, cr); err != nil {
			// Never leave a directory with other attributes than asked
			// for behind: a retry would find it and take it as made.
			rerr := s.nfs.rmdir(ctx, parent.fh, name, cr)
			return dirRef{}, fmt.Errorf("setting mode %04o and owner %d:%d (the new directory was removed again: %v): %w", sa.mode, sa.uid, sa.gid, rerr, err)
		}
		a.mode, a.uid, a.gid = sa.mode, sa.uid, sa.gid
	}
	return dirRef{fh: fh, attrs: a, gen: parent.gen}, nil
}

// lookupDir finds the directory at path (whose parent is parent) and
// caches it; a non-directory is NFS3ERR_NOTDIR.
func (s *session) lookupDir(ctx context.Context, parent dirRef, path []string) (dirRef, error) {
	var ref dirRef
	err := withCreds(ownerFirst(parent.attrs), func(cr *cred) (err error) {
		ref, err = s.nfs.lookup(ctx, parent.fh, path[len(path)-1], cr)
		return err
	})
	if err != nil {
		return dirRef{}, err
	}
	ref.gen = parent.gen
	if !ref.attrs.isDir() {
		return dirRef{}, fmt.Errorf("%s: %w", strings.Join(path, "/"), &StatusError{Status: nfsc.NFS3ErrNotDir})
	}
	s.cache.put(path, ref)
	return ref, nil
}

// dirAt resolves the directory at elems from the cache and LOOKUPs.
func (s *session) dirAt(ctx context.Context, elems []string) (dirRef, error) {
	ref, i := s.cache.deepest(elems)
	for ; i < len(elems); i++ {
		var err error
		if ref, err = s.lookupDir(ctx, ref, elems[:i+1]); err != nil {
			return dirRef{}, err
		}
	}
	return ref, nil
}

// Stat describes path: one LOOKUP with its parent's handle cached, a
// GETATTR for the root.
func (f *FS) Stat(ctx context.Context, p string) (export.Info, error) {
	elems, err := export.SplitPath(p, true)
	if err != nil {
		return export.Info{}, f.errorf("stat", p, err)
	}
	var ref dirRef
	err = f.s.retry(ctx, func() error {
		var err error
		ref, err = f.s.stat(ctx, elems)
		return err
	})
	if err != nil {
		return export.Info{}, f.errorf("stat", p, err)
	}
	a := ref.attrs
	return export.Info{IsDir: a.isDir(), Mode: export.Mode(a.mode) & export.ModeMask, UID: a.uid, GID: a.gid, ID: hex.EncodeToString(ref.fh)}, nil
}

func (s *session) stat(ctx context.Context, elems []string) (dirRef, error) {
	if len(elems) == 0 {
		root := s.cache.rootRef()
		a, err := s.nfs.getattr(ctx, root.fh, &rootCred)
		return dirRef{fh: root.fh, attrs: a}, err
	}
	parent, err := s.dirAt(ctx, elems[:len(elems)-1])
	if err != nil {
		return dirRef{}, err
	}
	var ref dirRef
	err = withCreds(ownerFirst(parent.attrs), func(cr *cred) (err error) {
		ref, err = s.nfs.lookup(ctx, parent.fh, elems[len(elems)-1], cr)
		return err
	})
	if err != nil {
		return dirRef{}, err
	}
	if ref.attrs.isDir() {
		ref.gen = parent.gen
		s.cache.put(elems, ref)
	}
	return ref, nil
}

// Capacity sends one FSSTAT for the export's root.
func (f *FS) Capacity(ctx context.Context) (export.Capacity, error) {
	var c export.Capacity
	err := f.s.retry(ctx, func() error {
		var err error
		c, err = f.s.nfs.fsstat(ctx, f.s.cache.rootRef().fh, &rootCred)
		return err
	})
	if err != nil {
		return c, f.errorf("fsstat", ".", err)
	}
	return c, nil
}
