package wire

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
)

// nfsProcs are the handle-level calls the session's path logic is written against, one
// implementation per protocol version: nfs3Client (NFSv3, RFC 1813) and nfs4Procs (NFSv4.1 over
// package nfs41). Statuses are *StatusError with NFSv3's numbers, which NFSv4 shares for every
// status the path logic acts on.
type nfsProcs interface {
	// root is the handle of the export's root: MOUNT over v3, the pseudo-filesystem over v4.1.
	root(ctx context.Context) ([]byte, error)
	null(ctx context.Context) error
	getattr(ctx context.Context, fh []byte, cr *cred) (attrs, error)
	lookup(ctx context.Context, dir []byte, name string, cr *cred) (dirRef, error)
	mkdir(ctx context.Context, dir []byte, name string, sa sattr, cr *cred) (fh []byte, a attrs, ok bool, err error)
	setattr(ctx context.Context, fh []byte, sa sattr, cr *cred) error
	remove(ctx context.Context, dir []byte, name string, cr *cred) error // not a directory: NFS3ERR_ISDIR
	rmdir(ctx context.Context, dir []byte, name string, cr *cred) error  // only a directory: NFS3ERR_NOTDIR
	rename(ctx context.Context, fromDir []byte, from string, toDir []byte, to string, cr *cred) error
	readdirPage(ctx context.Context, dir []byte, cookie uint64, verf [8]byte, cr *cred) (ents []dirEntry, next [8]byte, eof bool, err error)
	fsstat(ctx context.Context, fh []byte, cr *cred) (export.Capacity, error)
	read(ctx context.Context, fh []byte, p []byte, off uint64, cr *cred) (n int, eof bool, err error)
	write(ctx context.Context, fh []byte, off uint64, stable uint32, data []byte, cr *cred) (committed uint32, verf [8]byte, err error)
	commit(ctx context.Context, fh []byte, cr *cred) (verf [8]byte, err error)
	create(ctx context.Context, dir []byte, name string, sa sattr, cr *cred) (fh []byte, a attrs, ok bool, err error)
	symlink(ctx context.Context, dir []byte, name, target string, sa sattr, cr *cred) error
	readlink(ctx context.Context, fh []byte, cr *cred) (string, error)
	fsinfo(ctx context.Context, fh []byte, cr *cred) (rtmax, wtmax uint32, err error)
	close()
}

var _ nfsProcs = (*nfs3Client)(nil)

// nfs3Client is the NFSv3 procedures over one RPC client: one method per
// procedure, each encode, call, decode. Each is one round trip (more only
// while the server answers NFS3ERR_JUKEBOX). It knows handles, not paths:
// the session above it walks paths and caches handles.
//
// The transport sends a call once more after its connection died (sunrpc.Client.Call), so
// every procedure here is safe to repeat:
//
//	NULL, GETATTR, LOOKUP, READDIRPLUS, FSSTAT, FSINFO, READ, READLINK,
//	GETPORT, MNT   read only
//	SETATTR    sets absolute values: the repeat changes nothing
//	REMOVE, RMDIR   the repeat's NOENT means done (remove.go)
//	RENAME     the repeat's NOENT is done when from is gone and to is there (rename.go)
//	MKDIR      the repeat's EXIST is looked up by MkdirAll; an exclusive
//	           Mkdir reports it as ErrExist marked export.ErrMaybeDone, and
//	           the provisioner decides (makeDirectory)
//	CREATE, SYMLINK, and MKDIR in a copy   the repeat's EXIST is the object the
//	           first attempt made in the copy's own new directory (tree.go)
//	WRITE      writes the same bytes at the same offset again
//	COMMIT     commits again; the verifier says whether the writes survived
type nfs3Client struct {
	rpc          *client
	readdirBytes uint32                                    // maxcount of READDIRPLUS
	mount        func(ctx context.Context) ([]byte, error) // MNT of the export
}

func (c *nfs3Client) root(ctx context.Context) ([]byte, error) { return c.mount(ctx) }

func (c *nfs3Client) close() { c.rpc.Close() }

// errNoProgress is returned when a server's directory listing does not advance.
var errNoProgress = errors.New("READDIRPLUS made no progress")

// nfs3ErrJukebox: "the server initiated the request, but was not able to
// complete it in a timely fashion"; RFC 1813 says to wait and send it again
// with a new XID.
const nfs3ErrJukebox = 10008

func (c *nfs3Client) call(ctx context.Context, p procedure, cr *cred, args func(*encoder), decode func([]byte) error) error {
	backoff := sunrpc.NewBackoff(20 * time.Millisecond)
	maybeDone := false // an earlier attempt was a repeat, or JUKEBOX: "started, may finish"
	for {
		err := c.rpc.Call(ctx, p, cr, args, decode)
		if err != nil && maybeDone && !errors.Is(err, export.ErrMaybeDone) {
			err = &sunrpc.Repeated{Err: err}
		}
		if statusOf(err) != nfs3ErrJukebox {
			return err
		}
		maybeDone = true
		if !backoff.Wait(ctx) {
			return err
		}
	}
}

func (c *nfs3Client) null(ctx context.Context) error {
	return c.call(ctx, procNull, nil, nil, nil)
}

func (c *nfs3Client) getattr(ctx context.Context, fh []byte, cr *cred) (a attrs, err error) {
	err = c.call(ctx, procGetattr, cr, fhArgs(fh), func(res []byte) (err error) {
		a, err = decodeGetattr(res)
		return err
	})
	return a, err
}

// lookup returns the handle and attributes of name in dir (a GETATTR
// follows when the server sent no attributes).
func (c *nfs3Client) lookup(ctx context.Context, dir []byte, name string, cr *cred) (dirRef, error) {
	var fh []byte
	var a attrs
	var ok bool
	err := c.call(ctx, procLookup, cr, diropArgs(dir, name), func(res []byte) (err error) {
		fh, a, ok, err = decodeLookup(res)
		return err
	})
	if err != nil {
		return dirRef{}, err
	}
	if !ok {
		if a, err = c.getattr(ctx, fh, cr); err != nil {
			return dirRef{}, err
		}
	}
	return dirRef{fh: fh, attrs: a}, nil
}

func (c *nfs3Client) mkdir(ctx context.Context, dir []byte, name string, sa sattr, cr *cred) (fh []byte, a attrs, ok bool, err error) {
	err = c.call(ctx, procMkdir, cr, mkdirArgs(dir, name, sa), func(res []byte) (err error) {
		fh, a, ok, err = decodeMkdir(res)
		return err
	})
	return fh, a, ok, err
}

func (c *nfs3Client) setattr(ctx context.Context, fh []byte, sa sattr, cr *cred) error {
	return c.call(ctx, procSetattr, cr, setattrArgs(fh, sa), func(res []byte) error {
		return decodeWcc(res, "SETATTR", 1)
	})
}

func (c *nfs3Client) remove(ctx context.Context, dir []byte, name string, cr *cred) error {
	return c.call(ctx, procRemove, cr, diropArgs(dir, name), func(res []byte) error {
		return decodeWcc(res, "REMOVE", 1)
	})
}

func (c *nfs3Client) rmdir(ctx context.Context, dir []byte, name string, cr *cred) error {
	return c.call(ctx, procRmdir, cr, diropArgs(dir, name), func(res []byte) error {
		return decodeWcc(res, "RMDIR", 1)
	})
}

func (c *nfs3Client) rename(ctx context.Context, fromDir []byte, from string, toDir []byte, to string, cr *cred) error {
	return c.call(ctx, procRename, cr, renameArgs(fromDir, from, toDir, to), func(res []byte) error {
		return decodeWcc(res, "RENAME", 2)
	})
}

// readdirPage reads one READDIRPLUS page of dir from cookie: at most
// Options.ReaddirBytes of entries, "." and ".." included when the server
// sends them.
func (c *nfs3Client) readdirPage(ctx context.Context, dir []byte, cookie uint64, verf [8]byte, cr *cred) (ents []dirEntry, next [8]byte, eof bool, err error) {
	err = c.call(ctx, procReaddirplus, cr, readdirplusArgs(dir, cookie, verf, c.readdirBytes), func(res []byte) (err error) {
		ents, next, eof, err = decodeReaddirplus(res)
		return err
	})
	return ents, next, eof, err
}

func (c *nfs3Client) fsstat(ctx context.Context, fh []byte, cr *cred) (st export.Capacity, err error) {
	err = c.call(ctx, procFsstat, cr, fhArgs(fh), func(res []byte) (err error) {
		st, err = decodeFsstat(res)
		return err
	})
	return st, err
}

func (c *nfs3Client) read(ctx context.Context, fh []byte, p []byte, off uint64, cr *cred) (n int, eof bool, err error) {
	err = c.call(ctx, procRead, cr, readArgs(fh, off, uint32(len(p))), func(res []byte) (err error) {
		n, eof, err = decodeRead(res, p)
		return err
	})
	return n, eof, err
}

// write sends one WRITE and returns how stably the server took it and its write verifier; a short
// write is an error (servers take up to their wtmax).
func (c *nfs3Client) write(ctx context.Context, fh []byte, off uint64, stable uint32, data []byte, cr *cred) (committed uint32, verf [8]byte, err error) {
	var count uint32
	err = c.call(ctx, procWrite, cr, writeArgs(fh, off, stable, data), func(res []byte) (err error) {
		count, committed, verf, err = decodeWrite(res)
		return err
	})
	if err == nil && int(count) != len(data) {
		err = fmt.Errorf("%w: WRITE took %d of %d bytes", sunrpc.ErrProtocol, count, len(data))
	}
	return committed, verf, err
}

func (c *nfs3Client) commit(ctx context.Context, fh []byte, cr *cred) (verf [8]byte, err error) {
	err = c.call(ctx, procCommit, cr, commitArgs(fh), func(res []byte) (err error) {
		verf, err = decodeCommit(res)
		return err
	})
	return verf, err
}

// create makes a regular file (GUARDED); the handle and attributes are optional in the reply.
func (c *nfs3Client) create(ctx context.Context, dir []byte, name string, sa sattr, cr *cred) (fh []byte, a attrs, ok bool, err error) {
	err = c.call(ctx, procCreate, cr, createArgs(dir, name, sa), func(res []byte) (err error) {
		fh, a, ok, err = decodeMkdir(res) // CREATE3res is shaped as MKDIR3res
		return err
	})
	return fh, a, ok, err
}

func (c *nfs3Client) symlink(ctx context.Context, dir []byte, name, target string, sa sattr, cr *cred) error {
	return c.call(ctx, procSymlink, cr, symlinkArgs(dir, name, target, sa), func(res []byte) error {
		_, _, _, err := decodeMkdir(res) // SYMLINK3res is shaped as MKDIR3res
		return err
	})
}

func (c *nfs3Client) readlink(ctx context.Context, fh []byte, cr *cred) (target string, err error) {
	err = c.call(ctx, procReadlink, cr, fhArgs(fh), func(res []byte) (err error) {
		target, err = decodeReadlink(res)
		return err
	})
	return target, err
}

func (c *nfs3Client) fsinfo(ctx context.Context, fh []byte, cr *cred) (rtmax, wtmax uint32, err error) {
	err = c.call(ctx, procFsinfo, cr, fhArgs(fh), func(res []byte) (err error) {
		rtmax, wtmax, err = decodeFsinfo(res)
		return err
	})
	return rtmax, wtmax, err
}
