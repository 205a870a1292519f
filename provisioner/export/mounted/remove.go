package mounted

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

const (
	// direntBuf is the getdents buffer: one page of a directory listing.
	direntBuf = 32 << 10
	// maxPendingDirs bounds the subdirectories remembered from one page.
	maxPendingDirs = 16
	// maxStack bounds the open directories of one RemoveAll; a deeper
	// tree is finished by walking again from the top.
	maxStack = 128
)

// RemoveAll implements export.FS: depth first, one getdents page at a
// time, with an explicit stack of at most maxStack open directories, so
// memory and descriptors stay bounded whatever the size and depth of the
// tree. Entries are removed with unlinkat in their parent's descriptor;
// a symlink is removed, never followed.
func (f *FS) RemoveAll(ctx context.Context, p string, progress func(export.Removed)) error {
	elems, err := export.SplitPath(p, false)
	if err != nil {
		return err
	}
	parent, err := f.walk(elems[:len(elems)-1])
	if errors.Is(err, export.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.release(parent)
	r := &remover{f: f, counted: export.NewRemoveProgress(progress), buf: make([]byte, direntBuf), maxStack: maxStack}
	err = r.remove(ctx, parent, elems[len(elems)-1])
	r.counted.Report(true)
	if err != nil {
		return f.wrap("remove", p, err)
	}
	return nil
}

type remover struct {
	f        *FS
	counted  *export.RemoveProgress
	buf      []byte
	maxStack int
}

// frame is one open directory on the way down.
type frame struct {
	fd      int
	name    string   // its name in the directory below it on the stack
	pending []string // subdirectories seen in its last page
	rmdirs  int      // RMDIRs refused as not empty (written into meanwhile)
	idle    int      // listings in a row after which nothing was removed
	seen    export.Removed
}

// maxIdleListings bounds the listings of one directory in a row that
// remove nothing (entries the listing shows but that are gone, as a stale
// cache can show): RemoveAll fails instead of spinning.
const maxIdleListings = 8

func (r *remover) remove(ctx context.Context, parent int, name string) error {
	switch err := unix.Unlinkat(parent, name, unix.AT_REMOVEDIR); err {
	case nil:
		r.counted.Add(0, 1)
		return nil
	case unix.ENOENT:
		return nil
	case unix.ENOTDIR:
		return r.unlink(parent, name)
	case unix.ENOTEMPTY, unix.EEXIST:
	default:
		return err
	}
	for {
		base, err := unix.FcntlInt(uintptr(parent), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return err
		}
		truncated, err := r.walk(ctx, base, name)
		if err != nil || !truncated {
			return err
		}
	}
}

// walk empties and removes name in base (which it owns and closes). When
// the stack is full its bottom frame becomes the new base; walk then
// reports truncated and the caller starts again from the top.
func (r *remover) walk(ctx context.Context, base int, name string) (truncated bool, err error) {
	var stack []*frame
	defer func() {
		for _, fr := range stack {
			unix.Close(fr.fd)
		}
		unix.Close(base)
	}()
	top, err := r.open(base, name)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if errors.Is(err, unix.ENOTDIR) {
		return false, r.unlink(base, name)
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	stack = append(stack, &frame{fd: top, name: name})
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return truncated, err
		}
		fr := stack[len(stack)-1]
		parent := base
		if len(stack) > 1 {
			parent = stack[len(stack)-2].fd
		}
		child, removed, err := r.step(parent, fr)
		if err != nil {
			return truncated, fmt.Errorf("%s: %w", stackPath(stack, truncated), err)
		}
		switch {
		case child != nil && len(stack) == r.maxStack:
			unix.Close(base)
			base = stack[0].fd
			stack = append(stack[1:], child)
			truncated = true
		case child != nil:
			stack = append(stack, child)
		case removed:
			unix.Close(fr.fd)
			stack = stack[:len(stack)-1]
		}
		r.counted.Report(false)
	}
	return truncated, nil
}

func stackPath(stack []*frame, truncated bool) string {
	names := make([]string, 0, 3)
	for _, fr := range stack[max(0, len(stack)-3):] {
		names = append(names, fr.name)
	}
	return export.TreePath(names, truncated || len(stack) > 3)
}

// open opens the directory name in dir for removal, without following a
// symlink. A directory its owner may not read is first made u+rwx through
// an O_PATH descriptor (by the exact inode, never by path).
func (r *remover) open(dir int, name string) (int, error) {
	fd, err := openAt(dir, name)
	if !errors.Is(err, unix.EACCES) {
		return fd, err
	}
	pfd, perr := unix.Openat(dir, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if perr != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if unix.Fstat(pfd, &st) == nil {
		unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", pfd), (st.Mode&0o7777)|0o700)
	}
	return openAt(dir, name)
}

func (r *remover) unlink(dir int, name string) error {
	switch err := unix.Unlinkat(dir, name, 0); err {
	case nil:
		r.counted.Add(1, 0)
		return nil
	case unix.ENOENT, unix.EISDIR: // gone, or a directory the next page finds
		return nil
	default:
		return fmt.Errorf("%s: %w", name, err)
	}
}

// step does one unit of work on fr: returns a subdirectory to descend
// into, or removes the non-directories of one page, or — when fr is
// empty — removes it from parent (removed).
func (r *remover) step(parent int, fr *frame) (child *frame, removed bool, err error) {
	if child, err := r.nextPending(fr); child != nil || err != nil {
		return child, false, err
	}
	if done := r.counted.Done(); done == fr.seen {
		if fr.idle++; fr.idle > maxIdleListings {
			return nil, false, fmt.Errorf("listing keeps showing entries that cannot be found or removed")
		}
	} else {
		fr.idle, fr.seen = 0, r.counted.Done()
	}
	empty, err := r.removePage(fr)
	if err != nil || !empty {
		return nil, false, err
	}
	switch err := unix.Unlinkat(parent, fr.name, unix.AT_REMOVEDIR); {
	case err == nil:
		r.counted.Add(0, 1)
	case err == unix.ENOENT:
	case (err == unix.ENOTEMPTY || err == unix.EEXIST) && fr.rmdirs < 3:
		fr.rmdirs++
		return nil, false, nil
	default:
		return nil, false, err
	}
	return nil, true, nil
}

// nextPending opens the next pending subdirectory of fr to descend into;
// entries gone since the listing are skipped and ones that are no longer
// directories removed.
func (r *remover) nextPending(fr *frame) (*frame, error) {
	for len(fr.pending) > 0 {
		name := fr.pending[0]
		fr.pending = fr.pending[1:]
		fd, err := r.open(fr.fd, name)
		switch {
		case errors.Is(err, unix.ENOENT):
			continue
		case errors.Is(err, unix.ENOTDIR): // replaced since the listing
			if err := r.unlink(fr.fd, name); err != nil {
				return nil, err
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return &frame{fd: fd, name: name}, nil
	}
	return nil, nil
}

// removePage lists fr from the top, removing non-directories and keeping
// subdirectories for later (up to maxPendingDirs), until one buffer's
// worth removed or kept something; empty says the listing showed nothing
// at all.
func (r *remover) removePage(fr *frame) (empty bool, err error) {
	if _, err := unix.Seek(fr.fd, 0, 0); err != nil {
		return false, err
	}
	files, more := 0, false
	for {
		n, err := unix.Getdents(fr.fd, r.buf)
		if err != nil {
			return false, fmt.Errorf("listing: %w", err)
		}
		if n == 0 {
			return !more && len(fr.pending) == 0, nil
		}
		for b := r.buf[:n]; ; {
			d, rest, ok, err := nextDirent(b)
			if err != nil {
				return false, fmt.Errorf("listing: %w", err)
			}
			if !ok {
				break
			}
			b = rest
			switch isDir, gone := direntIsDir(fr.fd, d); {
			case gone || d.name == "." || d.name == "..":
			case isDir && len(fr.pending) < maxPendingDirs:
				fr.pending = append(fr.pending, d.name)
			case isDir:
				more = true
			default:
				if err := r.unlink(fr.fd, d.name); err != nil {
					return false, err
				}
				files++
			}
		}
		if files > 0 || len(fr.pending) > 0 {
			// One page done; the next listing starts again from the top
			// and shows only what is left.
			return false, nil
		}
	}
}

// direntIsDir tells whether the entry d of the directory dirfd is a
// directory, asking with fstatat (not following a symlink) when the
// file system does not say; gone when it no longer exists.
func direntIsDir(dirfd int, d dirent) (isDir, gone bool) {
	if d.typ != unix.DT_UNKNOWN {
		return d.typ == unix.DT_DIR, false
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, d.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, true
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR, false
}
