package wire

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/nfs41"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
)

// nfs4Procs are the session's calls over NFSv4.1: each is one COMPOUND of package nfs41, its
// attributes and statuses translated to the NFSv3 shapes the path logic uses.
type nfs4Procs struct {
	c     *nfs41.Client
	share string // the export's path in the server's pseudo-filesystem
}

var _ nfsProcs = (*nfs4Procs)(nil)

// nfs4Port is where NFSv4 servers listen: the only port EFS and Azure Files open.
const nfs4Port = 2049

func dialNFS4(ctx context.Context, server, share string, o *Options) (*nfs4Procs, error) {
	port := o.NFSPort
	if port == 0 {
		port = nfs4Port
	}
	c, err := nfs41.Dial(ctx, nfs41.Config{
		Server: server,
		Dial: func(ctx context.Context) (net.Conn, error) {
			return sunrpc.DialTCP(ctx, server, port, o.SourcePort)
		},
		RPC:          o.rpcConfig(),
		OwnerDomain:  o.OwnerDomain,
		ReaddirBytes: o.ReaddirBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("NFSv4.1 session with %s:%d: %w", server, port, v4err(err))
	}
	return &nfs4Procs{c: c, share: share}, nil
}

func (p *nfs4Procs) close() { p.c.Close() }

func (p *nfs4Procs) root(ctx context.Context) ([]byte, error) {
	fh, _, err := p.c.Root(ctx, p.share)
	return fh, v4err(err)
}

func (p *nfs4Procs) null(ctx context.Context) error { return p.c.Null(ctx) }

func (p *nfs4Procs) getattr(ctx context.Context, fh []byte, cr *cred) (attrs, error) {
	a, err := p.c.GetAttr(ctx, fh, cr)
	return fromV4(a), v4err(err)
}

func (p *nfs4Procs) lookup(ctx context.Context, dir []byte, name string, cr *cred) (dirRef, error) {
	fh, a, err := p.c.Lookup(ctx, dir, name, cr)
	if err != nil {
		return dirRef{}, v4err(err)
	}
	return dirRef{fh: fh, attrs: fromV4(a)}, nil
}

func (p *nfs4Procs) mkdir(ctx context.Context, dir []byte, name string, sa sattr, cr *cred) ([]byte, attrs, bool, error) {
	fh, a, err := p.c.Mkdir(ctx, dir, name, toV4(sa), cr)
	if err != nil {
		return nil, attrs{}, false, v4err(err)
	}
	return fh, fromV4(a), true, nil
}

func (p *nfs4Procs) create(ctx context.Context, dir []byte, name string, sa sattr, cr *cred) ([]byte, attrs, bool, error) {
	fh, a, err := p.c.CreateFile(ctx, dir, name, toV4(sa), cr)
	if err != nil {
		return nil, attrs{}, false, v4err(err)
	}
	return fh, fromV4(a), true, nil
}

func (p *nfs4Procs) symlink(ctx context.Context, dir []byte, name, target string, sa sattr, cr *cred) error {
	return v4err(p.c.Symlink(ctx, dir, name, target, toV4(sa), cr))
}

func (p *nfs4Procs) setattr(ctx context.Context, fh []byte, sa sattr, cr *cred) error {
	return v4err(p.c.SetAttr(ctx, fh, toV4(sa), cr))
}

// remove and rmdir: NFSv4's REMOVE takes either kind, so each checks the kind in the same
// COMPOUND, keeping NFSv3's answers (a directory is NFS3ERR_ISDIR to remove, a file
// NFS3ERR_NOTDIR to rmdir).
func (p *nfs4Procs) remove(ctx context.Context, dir []byte, name string, cr *cred) error {
	return v4err(p.c.RemoveKind(ctx, dir, name, false, cr))
}

func (p *nfs4Procs) rmdir(ctx context.Context, dir []byte, name string, cr *cred) error {
	return v4err(p.c.RemoveKind(ctx, dir, name, true, cr))
}

func (p *nfs4Procs) rename(ctx context.Context, fromDir []byte, from string, toDir []byte, to string, cr *cred) error {
	return v4err(p.c.Rename(ctx, fromDir, from, toDir, to, cr))
}

func (p *nfs4Procs) readdirPage(ctx context.Context, dir []byte, cookie uint64, verf [8]byte, cr *cred) ([]dirEntry, [8]byte, bool, error) {
	ents, next, eof, err := p.c.ReadDir(ctx, dir, cookie, verf, cr)
	if err != nil {
		return nil, next, false, v4err(err)
	}
	out := make([]dirEntry, len(ents))
	for i, e := range ents {
		out[i] = dirEntry{name: e.Name, cookie: e.Cookie}
		if e.Attr.RdattrErr == 0 && e.Attr.Has&nfs41.EntryNeeds == nfs41.EntryNeeds {
			out[i].attrs, out[i].haveAttrs, out[i].fh = fromV4(e.Attr), true, e.Attr.FH
		}
	}
	return out, next, eof, nil
}

func (p *nfs4Procs) fsstat(ctx context.Context, fh []byte, cr *cred) (export.Capacity, error) {
	a, err := p.c.Capacity(ctx, fh, cr)
	if err != nil {
		return export.Capacity{}, v4err(err)
	}
	return export.Capacity{SizeBytes: a.SpaceTotal, FreeBytes: a.SpaceFree, AvailableBytes: a.SpaceAvail, TotalInodes: a.FilesTotal, FreeInodes: a.FilesFree}, nil
}

func (p *nfs4Procs) read(ctx context.Context, fh []byte, b []byte, off uint64, cr *cred) (int, bool, error) {
	n, eof, err := p.c.Read(ctx, fh, b, off, cr)
	return n, eof, v4err(err)
}

func (p *nfs4Procs) write(ctx context.Context, fh []byte, off uint64, stable uint32, data []byte, cr *cred) (uint32, [8]byte, error) {
	committed, verf, err := p.c.Write(ctx, fh, off, stable, data, cr) // stable_how4 has stable_how's numbers
	return committed, verf, v4err(err)
}

func (p *nfs4Procs) commit(ctx context.Context, fh []byte, cr *cred) ([8]byte, error) {
	verf, err := p.c.Commit(ctx, fh, cr)
	return verf, v4err(err)
}

func (p *nfs4Procs) readlink(ctx context.Context, fh []byte, cr *cred) (string, error) {
	t, err := p.c.Readlink(ctx, fh, cr)
	return t, v4err(err)
}

func (p *nfs4Procs) fsinfo(ctx context.Context, fh []byte, cr *cred) (uint32, uint32, error) {
	r, w, err := p.c.IOSize(ctx, fh, cr)
	return uint32(min(r, math.MaxUint32)), uint32(min(w, math.MaxUint32)), v4err(err)
}

// fromV4 is the NFSv3 view of NFSv4 attributes (nfs_ftype4 has ftype3's numbers for the
// types both have; times keep 32 bits of seconds, as nfstime3 does).
func fromV4(a nfs41.Attr) attrs {
	return attrs{
		typ: a.Type, mode: a.Mode, uid: a.UID, gid: a.GID, nlink: a.Nlink, size: a.Size, used: a.Used,
		atime: nfsTime{sec: uint32(a.Atime.Sec), nsec: a.Atime.Nsec},
		mtime: nfsTime{sec: uint32(a.Mtime.Sec), nsec: a.Mtime.Nsec},
	}
}

func toV4(s sattr) nfs41.SetAttr {
	return nfs41.SetAttr{
		Mode: s.mode, NoMode: s.noMode, SetOwner: s.setOwner, UID: s.uid, GID: s.gid,
		SetSize: s.setSize, Size: s.size, SetTimes: s.setTimes,
		Atime: nfs41.Time{Sec: int64(s.atime.sec), Nsec: s.atime.nsec},
		Mtime: nfs41.Time{Sec: int64(s.mtime.sec), Nsec: s.mtime.nsec},
	}
}

// v4err gives an NFSv4 status the *StatusError the path logic tests (its NFSv3 number, which
// NFSv4 shares, named NFS4ERR_*), keeping whether the call may have been done twice.
// NFS4ERR_SYMLINK (a symlink where a directory was looked in) is NFS3ERR_NOTDIR, as NFSv3 says.
func v4err(err error) error {
	var se *nfs41.StatusError
	if !errors.As(err, &se) {
		return err
	}
	st := se.Status
	if st == nfs41.StatusSymlink {
		st = nfsc.NFS3ErrNotDir
	}
	var out error = &StatusError{Status: st, V4: true, Op: se.Op}
	if errors.Is(err, export.ErrMaybeDone) {
		out = &sunrpc.Repeated{Err: out}
	}
	return out
}
