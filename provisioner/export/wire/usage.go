package wire

import (
	"context"
	"fmt"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
)

// usageFrame is a directory being listed: its handle and where its
// listing goes on after the subdirectory being walked.
type usageFrame struct {
	dir    dirRef
	cookie uint64
	verf   [8]byte
}

// Usage walks the tree at p with READDIRPLUS, which brings every entry's
// attributes (space used, type) in the listing: one call per page, none
// per entry. Depth first, each directory resumed at the cookie after the
// subdirectory it descended into, so one frame per level is all it holds.
func (f *FS) Usage(ctx context.Context, p string, pace func(context.Context) error) (export.Usage, error) {
	elems, err := export.SplitPath(p, true)
	if err != nil {
		return export.Usage{}, f.errorf("usage", p, err)
	}
	var u export.Usage
	err = f.s.retry(ctx, func() error {
		u = export.Usage{}
		return f.s.usage(ctx, elems, pace, &u)
	})
	if err != nil {
		return export.Usage{}, f.errorf("usage", p, err)
	}
	return u, nil
}

func (s *session) usage(ctx context.Context, elems []string, pace func(context.Context) error, u *export.Usage) error {
	var top dirRef
	var err error
	if len(elems) == 0 {
		top = s.cache.rootRef()
	} else if top, err = s.dirAt(ctx, elems); err != nil {
		return err
	}
	u.Inodes, u.Bytes = 1, top.attrs.used
	stack := []*usageFrame{{dir: top}}
	for len(stack) > 0 {
		if len(stack) > export.MaxUsageDepth {
			return fmt.Errorf("deeper than %d levels: %w", export.MaxUsageDepth, export.ErrTooDeep)
		}
		if pace != nil {
			if err := pace(ctx); err != nil {
				return err
			}
		}
		child, done, err := s.countPage(ctx, stack[len(stack)-1], u)
		switch {
		case err != nil:
			return err
		case child != nil:
			stack = append(stack, child)
		case done:
			stack = stack[:len(stack)-1]
		}
	}
	return nil
}

// countPage reads one READDIRPLUS page of fr from its cookie and adds each entry to u, up to the
// first subdirectory, which it returns to be walked first (fr resumes after it); done when the
// listing is at its end.
func (s *session) countPage(ctx context.Context, fr *usageFrame, u *export.Usage) (child *usageFrame, done bool, err error) {
	var ents []dirEntry
	var verf [8]byte
	var eof bool
	err = withCreds(ownerFirst(fr.dir.attrs), func(cr *cred) (err error) {
		ents, verf, eof, err = s.nfs.readdirPage(ctx, fr.dir.fh, fr.cookie, fr.verf, cr)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("listing: %w", err)
	}
	fr.verf = verf
	start := fr.cookie
	for _, e := range ents {
		fr.cookie = e.cookie
		if e.name == "." || e.name == ".." {
			continue
		}
		u.Inodes++
		if !e.haveAttrs || e.attrs.isDir() && e.fh == nil {
			// Some servers leave attributes (or handles) out of a listing: ask.
			ref, err := s.lookupIn(ctx, fr.dir, e.name)
			if statusOf(err) == nfsc.NFS3ErrNoEnt {
				continue
			}
			if err != nil {
				return nil, false, err
			}
			e.attrs, e.fh, e.haveAttrs = ref.attrs, ref.fh, true
		}
		u.Bytes += e.attrs.used
		if e.attrs.isDir() {
			return &usageFrame{dir: dirRef{fh: e.fh, attrs: e.attrs}}, false, nil
		}
	}
	if !eof && fr.cookie == start { // no entries, or a cookie that does not advance
		return nil, false, fmt.Errorf("%w: %w", sunrpc.ErrProtocol, errNoProgress)
	}
	return nil, eof, nil
}

// lookupIn looks name up in dir as dir's owner, then as root.
func (s *session) lookupIn(ctx context.Context, dir dirRef, name string) (dirRef, error) {
	var ref dirRef
	err := withCreds(ownerFirst(dir.attrs), func(cr *cred) (err error) {
		ref, err = s.nfs.lookup(ctx, dir.fh, name, cr)
		return err
	})
	return ref, err
}
