package mounted

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// usageFrame is an open directory and the offset its listing resumes at
// after the subdirectory being walked.
type usageFrame struct {
	fd  int
	off int64
}

// Usage implements export.FS: getdents pages and fstatat (no following)
// per entry, depth first with one open directory per level. Every level
// holds a descriptor, so the walk stops at maxStack levels (like
// RemoveAll's stack) rather than export.MaxUsageDepth: a tenant's deep
// tree must not use up the process's descriptors, which provisioning
// needs too.
func (f *FS) Usage(ctx context.Context, p string, pace func(context.Context) error) (u export.Usage, err error) {
	top, err := f.openTree(ctx, p)
	if err != nil {
		return u, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(top, &st); err != nil {
		unix.Close(top)
		return u, f.wrap("stat", p, err)
	}
	u.Inodes, u.Bytes = 1, uint64(st.Blocks)*512
	stack := []*usageFrame{{fd: top}}
	defer func() {
		for _, fr := range stack {
			unix.Close(fr.fd)
		}
	}()
	buf := make([]byte, listingBytes)
	for len(stack) > 0 {
		if len(stack) > maxStack {
			return u, fmt.Errorf("usage of %s in %s: deeper than %d levels: %w", p, f.name, maxStack, export.ErrTooDeep)
		}
		if err := ctx.Err(); err != nil {
			return u, err
		}
		if pace != nil {
			if err := pace(ctx); err != nil {
				return u, err
			}
		}
		fr := stack[len(stack)-1]
		child, done, err := countPage(fr, buf, &u)
		switch {
		case err != nil:
			return u, fmt.Errorf("usage of %s in %s: %w", p, f.name, err)
		case done:
			unix.Close(fr.fd)
			stack = stack[:len(stack)-1]
		case child != nil:
			stack = append(stack, child)
		}
	}
	return u, nil
}

// openTree opens the directory p (the export root for ""), not following
// a symlink anywhere.
func (f *FS) openTree(ctx context.Context, p string) (int, error) {
	elems, err := export.SplitPath(p, true)
	if err != nil {
		return -1, err
	}
	if len(elems) == 0 {
		return unix.FcntlInt(uintptr(f.root), unix.F_DUPFD_CLOEXEC, 0)
	}
	parent, name, err := f.parentOf(ctx, p)
	if err != nil {
		return -1, err
	}
	fd, err := openAt(parent, name)
	f.release(parent)
	if err != nil {
		return -1, f.wrap("open", p, err)
	}
	return fd, nil
}

// countPage reads one buffer of fr's listing from where it stopped and
// adds each entry to u, up to the first subdirectory, which it opens and
// returns to be walked first (fr resumes after it); done when the listing
// has no more entries.
func countPage(fr *usageFrame, buf []byte, u *export.Usage) (child *usageFrame, done bool, err error) {
	if _, err := unix.Seek(fr.fd, fr.off, 0); err != nil {
		return nil, false, err
	}
	n, err := unix.Getdents(fr.fd, buf)
	if err != nil {
		return nil, false, fmt.Errorf("listing: %w", err)
	}
	if n == 0 {
		return nil, true, nil
	}
	for b := buf[:n]; ; {
		d, rest, ok, err := nextDirent(b)
		if err != nil || !ok {
			return nil, false, err
		}
		b, fr.off = rest, d.next // resume after this entry
		if d.name == "." || d.name == ".." {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fr.fd, d.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // gone since the listing
		}
		u.Inodes++
		u.Bytes += uint64(st.Blocks) * 512
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		fd, err := openAt(fr.fd, d.name)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", d.name, err)
		}
		return &usageFrame{fd: fd}, false, nil
	}
}
