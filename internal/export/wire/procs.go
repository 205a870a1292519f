package wire

import (
	"context"
	"errors"
	"time"

	"github.com/nfs-subdir/provisioner/internal/export"
)

// nfs3Client is the NFSv3 procedures over one RPC client: one method per
// procedure, each encode, call, decode. Each is one round trip (more only
// while the server answers NFS3ERR_JUKEBOX). It knows handles, not paths:
// the session above it walks paths and caches handles.
type nfs3Client struct {
	rpc          *client
	readdirBytes uint32 // maxcount of READDIRPLUS
}

// errNoProgress is returned when a server's directory listing does not advance.
var errNoProgress = errors.New("READDIRPLUS made no progress")

// nfs3ErrJukebox: "the server initiated the request, but was not able to
// complete it in a timely fashion"; RFC 1813 says to wait and send it again
// with a new XID.
const nfs3ErrJukebox = 10008

func (c *nfs3Client) call(ctx context.Context, p procedure, cr *cred, args func(*encoder), decode func([]byte) error) error {
	delay := 20 * time.Millisecond
	maybeDone := false // an earlier attempt was a repeat, or JUKEBOX: "started, may finish"
	for {
		err := c.rpc.call(ctx, p, cr, args, decode)
		if err != nil && maybeDone && !errors.Is(err, export.ErrMaybeDone) {
			err = &errRepeated{err}
		}
		if statusOf(err) != nfs3ErrJukebox {
			return err
		}
		maybeDone = true
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, time.Second)
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
