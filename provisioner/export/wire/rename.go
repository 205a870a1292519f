package wire

import (
	"context"
	"fmt"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/provisioner/provisioner/export"
)

// Rename renames from to to without ever replacing anything. NFSv3 RENAME
// replaces an empty directory (POSIX rename semantics) and has no
// "no replace" flag, so the target is looked up first: an archive costs
// two round trips (LOOKUP, RENAME) with the parents' handles cached. A
// directory created at the target by someone else between the two calls
// could still be replaced if it is empty; nothing with data ever is
// (the server refuses with NFS3ERR_EXIST / NOTEMPTY).
func (f *FS) Rename(ctx context.Context, from, to string) error {
	fe, err := splitPath(from)
	if err == nil {
		var te []string
		te, err = splitPath(to)
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
		_, err := s.lookup(ctx, toDir.fh, toName, cr)
		return err
	})
	switch {
	case err == nil:
		return fmt.Errorf("target exists: %w", export.ErrExist)
	case statusOf(err) != nfsc.NFS3ErrNoEnt:
		return fmt.Errorf("looking up the target: %w", err)
	}
	err = withCreds(ownerFirst(fromDir.attrs, toDir.attrs.gid), func(cr *cred) error {
		return s.rename(ctx, fromDir.fh, fe[len(fe)-1], toDir.fh, toName, cr)
	})
	s.cache.forget(fe)
	if err == nil {
		s.cache.forget(te)
	}
	return err
}
