package wire

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// Tree is the export's objects by file handle, for export.CopyTree: a
// listing brings every entry's handle and attributes (READDIRPLUS), so a
// copy never looks a name up again, and what a handle names cannot be
// swapped for a symlink behind it. Each call is one round trip.
func (f *FS) Tree() export.Tree { return &tree{f: f} }

type tree struct{ f *FS }

// fileNode is a file a copy writes: its handle and the server's write
// verifier of every unstable WRITE, which COMMIT must give back (else the
// server restarted and may have lost them).
type fileNode struct {
	ref     dirRef
	mu      sync.Mutex
	verf    [8]byte
	wrote   bool
	changed bool   // the verifier changed between writes
	end     uint64 // where the data written ends
	pending uint64 // bytes written unstable since the last COMMIT
}

// commitEvery is how much unstable data of one file is written before a COMMIT: the server
// flushes a large file while the rest of it is still being sent, not all of it at the end.
const commitEvery = 64 << 20

func refOf(n export.Node) (dirRef, error) {
	switch n := n.(type) {
	case dirRef:
		return n, nil
	case *fileNode:
		return n.ref, nil
	}
	return dirRef{}, fmt.Errorf("%w: not a node of this backend (%T)", export.ErrInvalidPath, n)
}

func (t *tree) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s on %s:%s: %w", op, t.f.s.server, t.f.s.share, err)
}

func (t *tree) OpenDir(ctx context.Context, dir string) (export.Node, export.FileInfo, error) {
	elems, err := export.SplitPath(dir, true)
	if err != nil {
		return nil, export.FileInfo{}, t.wrap("open "+dir, err)
	}
	var ref dirRef
	err = t.f.s.retry(ctx, func() (err error) {
		if len(elems) == 0 {
			ref, err = t.f.s.stat(ctx, elems)
			return err
		}
		ref, err = t.f.s.dirAt(ctx, elems)
		return err
	})
	if err != nil {
		return nil, export.FileInfo{}, t.wrap("open "+dir, err)
	}
	return ref, fileInfo(ref.attrs), nil
}

func (t *tree) ReadDir(ctx context.Context, n export.Node, at export.DirCursor) ([]export.DirEntry, export.DirCursor, bool, error) {
	dir, err := refOf(n)
	if err != nil {
		return nil, at, false, err
	}
	s := t.f.s
	var page []dirEntry
	var verf [8]byte
	var eof bool
	err = withCreds(ownerFirst(dir.attrs), func(cr *cred) (err error) {
		page, verf, eof, err = s.nfs.readdirPage(ctx, dir.fh, at.Cookie, at.Verifier, cr)
		return err
	})
	if err != nil {
		return nil, at, false, t.wrap("list", err)
	}
	next := at
	next.Verifier = verf
	ents := make([]export.DirEntry, 0, len(page))
	for _, e := range page {
		next.Cookie = e.cookie
		if e.name == "." || e.name == ".." {
			continue
		}
		if !e.haveAttrs || e.fh == nil {
			ref, err := s.lookupIn(ctx, dir, e.name)
			if statusOf(err) == nfsc.NFS3ErrNoEnt {
				continue // removed since the listing
			}
			if err != nil {
				return nil, at, false, t.wrap("look up "+e.name, err)
			}
			e.attrs, e.fh = ref.attrs, ref.fh
		}
		ents = append(ents, export.DirEntry{Name: e.name, Node: dirRef{fh: e.fh, attrs: e.attrs}, Info: fileInfo(e.attrs), Next: next})
	}
	return ents, next, eof, nil
}

func (t *tree) ReadAt(ctx context.Context, n export.Node, p []byte, off uint64) (int, bool, error) {
	ref, err := refOf(n)
	if err != nil {
		return 0, false, err
	}
	var got int
	var eof bool
	err = withCreds(ownerFirst(ref.attrs), func(cr *cred) (err error) {
		got, eof, err = t.f.s.nfs.read(ctx, ref.fh, p, off, cr)
		return err
	})
	return got, eof, t.wrap("read", err)
}

func (t *tree) ReadLink(ctx context.Context, n export.Node) (string, error) {
	ref, err := refOf(n)
	if err != nil {
		return "", err
	}
	var target string
	err = withCreds(ownerFirst(ref.attrs), func(cr *cred) (err error) {
		target, err = t.f.s.nfs.readlink(ctx, ref.fh, cr)
		return err
	})
	return target, t.wrap("readlink", err)
}

// copyDirMode is a directory's mode while a copy fills it: anyone may make
// entries in it, so that each can be made by its own owner (the only way to
// own it on a root_squash export). A copy's directories are in a staging
// directory no one else reaches; Finish gives them their mode.
const copyDirMode = 0o777

func (t *tree) Mkdir(ctx context.Context, n export.Node, name string, a export.FileInfo) (export.Node, error) {
	parent, err := refOf(n)
	if err != nil {
		return nil, err
	}
	sa := sattr{mode: copyDirMode, uid: a.UID, gid: a.GID, setOwner: true}
	ref, err := t.makeObject(ctx, parent, name, a, nf3Dir, func(cr *cred) ([]byte, attrs, bool, error) {
		return t.f.s.nfs.mkdir(ctx, parent.fh, name, sa, cr)
	})
	if err == nil && (ref.attrs.mode != copyDirMode || ref.attrs.uid != a.UID || ref.attrs.gid != a.GID) {
		// A umask, or an inherited owner: the directory must be writable to all while it fills.
		err = withCreds(ownerFirst(ref.attrs), func(cr *cred) error { return t.f.s.nfs.setattr(ctx, ref.fh, sa, cr) })
		ref.attrs.mode, ref.attrs.uid, ref.attrs.gid = copyDirMode, a.UID, a.GID
	}
	return ref, t.wrap("mkdir "+name, err)
}

// makeObject makes name in parent with mk, as the owner-to-be (root when it may not write the
// parent), completes the handle and attributes, and takes the object of typ that the repeat of a
// call whose reply was lost met.
func (t *tree) makeObject(ctx context.Context, parent dirRef, name string, a export.FileInfo, typ uint32, mk func(*cred) ([]byte, attrs, bool, error)) (dirRef, error) {
	var ref dirRef
	err := withCreds(mkdirCreds(parent.attrs, a.UID, a.GID), func(cr *cred) error {
		fh, got, ok, err := mk(cr)
		if err == nil {
			ref, err = t.made(ctx, parent, name, fh, got, ok, cr)
		}
		return err
	})
	if repeatMet(err) {
		ref, err = t.ours(ctx, parent, name, typ)
	}
	return ref, err
}

// made completes what MKDIR or CREATE returned: the handle and attributes a server may leave out.
func (t *tree) made(ctx context.Context, parent dirRef, name string, fh []byte, a attrs, ok bool, cr *cred) (dirRef, error) {
	if fh == nil {
		return t.f.s.nfs.lookup(ctx, parent.fh, name, cr)
	}
	if !ok {
		var err error
		if a, err = t.f.s.nfs.getattr(ctx, fh, cr); err != nil {
			return dirRef{}, err
		}
	}
	return dirRef{fh: fh, attrs: a}, nil
}

func (t *tree) Create(ctx context.Context, n export.Node, name string, a export.FileInfo) (export.Node, error) {
	parent, err := refOf(n)
	if err != nil {
		return nil, err
	}
	sa := sattr{mode: uint32(a.Mode)&0o777 | 0o600, uid: a.UID, gid: a.GID, setOwner: true}
	ref, err := t.makeObject(ctx, parent, name, a, nf3Reg, func(cr *cred) ([]byte, attrs, bool, error) {
		return t.f.s.nfs.create(ctx, parent.fh, name, sa, cr)
	})
	if err != nil {
		return nil, t.wrap("create "+name, err)
	}
	return &fileNode{ref: ref}, nil
}

// WriteAt sends one WRITE: FILE_SYNC when p is the whole file (no COMMIT is then needed),
// else UNSTABLE, with a COMMIT every commitEvery bytes.
func (t *tree) WriteAt(ctx context.Context, n export.Node, p []byte, off uint64, whole bool) error {
	f, ok := n.(*fileNode)
	if !ok {
		return fmt.Errorf("%w: write to a node Create did not make", export.ErrInvalidPath)
	}
	stable := uint32(writeUnstable)
	if whole {
		stable = writeFileSync
	}
	var verf [8]byte
	var committed uint32
	err := withCreds(ownerFirst(f.ref.attrs), func(cr *cred) (err error) {
		committed, verf, err = t.f.s.nfs.write(ctx, f.ref.fh, off, stable, p, cr)
		return err
	})
	if err != nil {
		return t.wrap("write", err)
	}
	f.mu.Lock()
	if committed != writeFileSync {
		if f.wrote && verf != f.verf {
			f.changed = true
		}
		f.verf, f.wrote = verf, true
		f.pending += uint64(len(p))
	}
	f.end = max(f.end, off+uint64(len(p)))
	due := f.pending >= commitEvery
	if due {
		f.pending = 0
	}
	f.mu.Unlock()
	if due {
		return t.commit(ctx, f)
	}
	return nil
}

func (t *tree) Symlink(ctx context.Context, n export.Node, name, target string, a export.FileInfo) error {
	parent, err := refOf(n)
	if err != nil {
		return err
	}
	// Owner only: a server may apply times by following the new link (go-nfs does), which
	// would touch whatever it points at. A link's own times are not kept.
	sa := sattr{noMode: true, uid: a.UID, gid: a.GID, setOwner: true}
	err = withCreds(mkdirCreds(parent.attrs, a.UID, a.GID), func(cr *cred) error {
		return t.f.s.nfs.symlink(ctx, parent.fh, name, target, sa, cr)
	})
	if repeatMet(err) {
		_, err = t.ours(ctx, parent, name, nf3Lnk)
	}
	return t.wrap("symlink "+name, err)
}

// repeatMet reports an EXIST that answered a call sent again after its connection dropped: the
// first attempt made the object. A copy makes objects only in its own new directories, so what
// is there is its own.
func repeatMet(err error) bool {
	return errors.Is(err, export.ErrMaybeDone) && errors.Is(err, export.ErrExist)
}

// ours looks up what a repeated call met, which must be of the type the call makes.
func (t *tree) ours(ctx context.Context, parent dirRef, name string, typ uint32) (dirRef, error) {
	ref, err := t.f.s.lookupIn(ctx, parent, name)
	if err == nil && ref.attrs.typ != typ {
		err = fmt.Errorf("%s: something else than what was made is there: %w", name, export.ErrExist)
	}
	return ref, err
}

// Finish commits a file's unstable writes (checking the server kept them)
// and sends one SETATTR with the final mode, owner and times, and the size
// when the data written ends before it (a hole at the end).
func (t *tree) Finish(ctx context.Context, n export.Node, a export.FileInfo) error {
	ref, err := refOf(n)
	if err != nil {
		return err
	}
	sa := sattr{mode: uint32(a.Mode), uid: a.UID, gid: a.GID, setOwner: true, setTimes: true, atime: toNFSTime(a.Atime), mtime: toNFSTime(a.Mtime)}
	if f, ok := n.(*fileNode); ok {
		if err := t.commit(ctx, f); err != nil {
			return err
		}
		sa.setSize, sa.size = f.end < a.Size, a.Size
	}
	err = withCreds(ownerFirst(ref.attrs), func(cr *cred) error { return t.f.s.nfs.setattr(ctx, ref.fh, sa, cr) })
	return t.wrap("setattr", err)
}

// commit sends a COMMIT of the whole file (other writes of it may go on meanwhile) and checks
// the server's verifier is the one every unstable WRITE got.
func (t *tree) commit(ctx context.Context, f *fileNode) error {
	f.mu.Lock()
	wrote := f.wrote
	f.mu.Unlock()
	if !wrote {
		return nil
	}
	var verf [8]byte
	err := withCreds(ownerFirst(f.ref.attrs), func(cr *cred) (err error) {
		verf, err = t.f.s.nfs.commit(ctx, f.ref.fh, cr)
		return err
	})
	if err != nil {
		return t.wrap("commit", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changed || verf != f.verf {
		return fmt.Errorf("commit on %s:%s: the server restarted while the file was written and may have lost some of it", t.f.s.server, t.f.s.share)
	}
	return nil
}

// IOSize asks FSINFO once per session: the smaller of rtmax and wtmax,
// less what a READ reply needs besides its data within the reply limit.
func (t *tree) IOSize(ctx context.Context) (int, error) {
	s := t.f.s
	s.ioOnce.Lock()
	defer s.ioOnce.Unlock()
	if s.ioSize > 0 {
		return s.ioSize, nil
	}
	var rtmax, wtmax uint32
	err := s.retry(ctx, func() (err error) {
		rtmax, wtmax, err = s.nfs.fsinfo(ctx, s.cache.rootRef().fh, &rootCred)
		return err
	})
	if err != nil {
		return 0, t.wrap("fsinfo", err)
	}
	size := min(int(rtmax), int(wtmax), s.o.MaxReplySize-4096)
	if size < 4096 {
		return 0, fmt.Errorf("fsinfo on %s:%s: the server reads or writes %d bytes at most", s.server, s.share, size)
	}
	s.ioSize = size
	return size, nil
}

func fileInfo(a attrs) export.FileInfo {
	i := export.FileInfo{Mode: export.Mode(a.mode) & export.ModeMask, UID: a.uid, GID: a.gid, Size: a.size, Links: a.nlink,
		Atime: a.atime.time(), Mtime: a.mtime.time()}
	switch a.typ {
	case nf3Dir:
		i.Type = export.TypeDir
	case nf3Reg:
		i.Type = export.TypeFile
	case nf3Lnk:
		i.Type = export.TypeSymlink
	}
	return i
}

func (t nfsTime) time() time.Time { return time.Unix(int64(t.sec), int64(t.nsec)) }

func toNFSTime(t time.Time) nfsTime {
	if t.IsZero() || t.Unix() < 0 {
		return nfsTime{}
	}
	return nfsTime{sec: uint32(t.Unix()), nsec: uint32(t.Nanosecond())}
}
