package wire

import (
	"context"
	"fmt"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// Rename renames from to to without ever replacing anything. NFSv3 RENAME
// replaces an empty directory (POSIX rename semantics) and has no
// "no replace" flag, so the target is looked up first: an archive costs
// two round trips (LOOKUP, RENAME) with the parents' handles cached. A
// directory created at the target by someone else between the two calls
// could still be replaced if it is empty; nothing with data ever is
// (the server refuses with NFS3ERR_EXIST / NOTEMPTY).
func (f *FS) Rename(ctx context.Context, from, to string) error {
	fe, err := export.SplitPath(from, true)
	if err == nil {
		var te []string
		te, err = export.SplitPath(to, true)
		if err == nil && (len(fe) == 0 || len(te) == 0) {
			err = fmt.Errorf("the export root cannot be renamed or replaced: %w", export.ErrInvalidPath)
		}
		if err == nil {
			err = f.s.retry(ctx, func() error { return f.s.renameNoReplace(ctx, fe, te) })
		}
	}
	if err != nil {
		return fmt.Errorf("rename %s to %s on %s:%s: %w", from, to, f.s.server, f.s.share, err)
	}
	return nil
}

func (s *session) renameNoReplace(ctx context.Context, fe, te []string) error {
	fromDir, err := s.dirAt(ctx, fe[:len(fe)-1])
	if err != nil {
		return err
	}
	toDir, err := s.dirAt(ctx, te[:len(te)-1])
	if err != nil {
		return err
	}
	toName := te[len(te)-1]
	err = withCreds(ownerFirst(toDir.attrs), func(cr *cred) error {
		_, err := s.nfs.lookup(ctx, toDir.fh, toName, cr)
		return err
	})
	switch {
	case err == nil:
		return fmt.Errorf("target exists: %w", export.ErrExist)
	case statusOf(err) != nfsc.NFS3ErrNoEnt:
		return fmt.Errorf("looking up the target: %w", err)
	}
	fromName := fe[len(fe)-1]
	err = withCreds(ownerFirst(fromDir.attrs, toDir.attrs.gid), func(cr *cred) error {
		return s.nfs.rename(ctx, fromDir.fh, fromName, toDir.fh, toName, cr)
	})
	if statusOf(err) == nfsc.NFS3ErrNoEnt && s.renamed(ctx, fromDir, fromName, toDir, toName) {
		// A RENAME sent again after a lost connection finds its own work
		// done: the target, missing a moment ago, is there; the source is not.
		err = nil
	}
	s.forget(fe)
	if err == nil {
		s.forget(te)
	}
	return err
}

// renamed reports whether from is gone and to exists.
func (s *session) renamed(ctx context.Context, fromDir dirRef, from string, toDir dirRef, to string) bool {
	lookup := func(d dirRef, name string) error {
		return withCreds(ownerFirst(d.attrs), func(cr *cred) error {
			_, err := s.nfs.lookup(ctx, d.fh, name, cr)
			return err
		})
	}
	return lookup(toDir, to) == nil && statusOf(lookup(fromDir, from)) == nfsc.NFS3ErrNoEnt
}
