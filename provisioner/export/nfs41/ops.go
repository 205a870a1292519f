package nfs41

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
)

// The handle-level operations: each one COMPOUND (SEQUENCE first), so one round trip. They know
// handles, not paths; the caller walks paths. Operations that change something are sent with
// cachethis, so that a resend on the same session is answered from the server's reply cache.
// The Observer sees each COMPOUND under the name of the NFSv3 procedure it does the work of
// (MKDIR, CREATE, RMDIR, ...), so that dashboards read the same over both versions.

// objAttrs are the attributes read of every object looked up; madeAttrs of what MKDIR, CREATE
// and SYMLINK make, which are checked against what was asked (fewer to encode on the server: a
// provision is the hot path).
var (
	objAttrs  = bits(attrType, attrSize, attrMode, attrNumLinks, attrOwner, attrOwnerGroup, attrSpaceUsed, attrTimeAccess, attrTimeModify)
	madeAttrs = bits(attrType, attrMode, attrOwner, attrOwnerGroup)
)

// Root returns the handle and attributes of path in the server's pseudo-filesystem (PUTROOTFH,
// a LOOKUP per element), having checked with SECINFO_NO_NAME that it takes AUTH_SYS.
func (c *Client) Root(ctx context.Context, path string) ([]byte, Attr, error) {
	ops := []op{{code: opPutRootFH}}
	for _, el := range strings.Split(path, "/") {
		if el != "" {
			ops = append(ops, lookup(el))
		}
	}
	limit := maxOps
	if s, err := c.current(ctx); err == nil {
		limit = min(limit, int(s.maxOperations))
	}
	if len(ops)+3 > limit { // SEQUENCE, the lookups, GETFH, GETATTR
		return nil, Attr{}, fmt.Errorf("export path %s has more elements than the %d operations a COMPOUND of %s may hold", path, limit, c.cfg.Server)
	}
	var fh []byte
	var a Attr
	ops = append(ops, getFH(&fh), getattr(objAttrs, &a))
	if err := c.compound(ctx, "LOOKUP", &sunrpc.RootCred, false, ops...); err != nil {
		return nil, Attr{}, fmt.Errorf("look up %s in the pseudo-filesystem of %s: %w", path, c.cfg.Server, err)
	}
	var flavors []uint32
	sec := op{code: opSecinfoNoName, args: func(e *sunrpc.Encoder) { e.Uint32(0) /* SECINFO_STYLE4_CURRENT_FH */ }, res: func(d *sunrpc.Decoder) {
		n := d.Uint32()
		for i := uint32(0); i < n && i < 64 && d.Err == nil; i++ {
			f := d.Uint32()
			if f == 6 { // RPCSEC_GSS: oid, qop, service
				d.Opaque(1024)
				d.Skip(8)
			}
			flavors = append(flavors, f)
		}
	}}
	err := c.compound(ctx, "SECINFO_NO_NAME", &sunrpc.RootCred, false, putFH(fh), sec)
	switch {
	case Status(err) == StatusNotSupp:
		// Not every server has it (it is optional before 4.1 servers must keep it); the
		// calls themselves will say whether AUTH_SYS is taken.
	case err != nil:
		return nil, Attr{}, fmt.Errorf("SECINFO_NO_NAME of %s on %s: %w", path, c.cfg.Server, err)
	case len(flavors) > 0 && !hasFlavor(flavors, 1):
		return nil, Attr{}, fmt.Errorf("%s on %s does not take AUTH_SYS (it offers flavors %v; Kerberos is not supported)", path, c.cfg.Server, flavors)
	}
	return fh, a, nil
}

func hasFlavor(fs []uint32, f uint32) bool {
	for _, g := range fs {
		if g == f {
			return true
		}
	}
	return false
}

// GetAttr reads fh's attributes.
func (c *Client) GetAttr(ctx context.Context, fh []byte, cr *sunrpc.Cred) (Attr, error) {
	var a Attr
	err := c.compound(ctx, "GETATTR", cr, false, putFH(fh), getattr(objAttrs, &a))
	return a, err
}

// Lookup returns the handle and attributes of name in dir, not following a symlink.
func (c *Client) Lookup(ctx context.Context, dir []byte, name string, cr *sunrpc.Cred) ([]byte, Attr, error) {
	var fh []byte
	var a Attr
	err := c.compound(ctx, "LOOKUP", cr, false, putFH(dir), lookup(name), getFH(&fh), getattr(objAttrs, &a))
	return fh, a, err
}

// Mkdir makes directory name in dir with sa's mode and owner in the CREATE itself, and returns its
// handle and attributes: one round trip.
func (c *Client) Mkdir(ctx context.Context, dir []byte, name string, sa SetAttr, cr *sunrpc.Cred) ([]byte, Attr, error) {
	return c.create(ctx, "MKDIR", dir, name, TypeDir, "", sa, cr)
}

// Symlink makes a symbolic link name in dir pointing at target.
func (c *Client) Symlink(ctx context.Context, dir []byte, name, target string, sa SetAttr, cr *sunrpc.Cred) error {
	_, _, err := c.create(ctx, "SYMLINK", dir, name, TypeLnk, target, sa, cr)
	return err
}

func (c *Client) create(ctx context.Context, what string, dir []byte, name string, typ uint32, target string, sa SetAttr, cr *sunrpc.Cred) ([]byte, Attr, error) {
	var fh []byte
	var a Attr
	cr8 := op{code: opCreate, args: func(e *sunrpc.Encoder) {
		e.Uint32(typ)
		if typ == TypeLnk {
			e.String(target)
		}
		e.String(name)
		encodeSetAttr(e, sa, c.cfg.OwnerDomain)
	}, res: func(d *sunrpc.Decoder) {
		skipChangeInfo(d)
		decodeBitmap(d) // attrset
	}}
	err := c.compound(ctx, what, cr, true, putFH(dir), cr8, getFH(&fh), getattr(madeAttrs, &a))
	return fh, a, err
}

// Open4 share access and creation modes.
const (
	shareAccessBoth   = 3
	shareWantNoDeleg  = 0x0400
	openCreate        = 1
	createGuarded     = 1
	claimNull         = 0
	openDelegNone     = 0
	openDelegNoneExt  = 3
	openDelegRead     = 1
	openDelegWrite    = 2
	whyNoDelegContend = 1
	whyNoDelegResrc   = 2
)

// CreateFile makes regular file name in dir (failing with NFS4ERR_EXIST when anything is there)
// with sa's mode and owner, and closes it again: OPEN (GUARDED create, no delegation wanted),
// GETFH, GETATTR and CLOSE of the current stateid in one COMPOUND. Its data is written with the
// anonymous stateid, as NFSv3 writes without an open.
func (c *Client) CreateFile(ctx context.Context, dir []byte, name string, sa SetAttr, cr *sunrpc.Cred) ([]byte, Attr, error) {
	var fh []byte
	var a Attr
	open := op{code: opOpen, args: func(e *sunrpc.Encoder) {
		c.mu.Lock()
		clientID := c.clientID // of the session the COMPOUND is sent on
		c.mu.Unlock()
		e.Uint32(0) // seqid, unused in 4.1
		e.Uint32(shareAccessBoth | shareWantNoDeleg)
		e.Uint32(0) // deny none
		e.Uint64(clientID)
		e.String("nfs-subdir-provisioner copy")
		e.Uint32(openCreate)
		e.Uint32(createGuarded)
		encodeSetAttr(e, sa, c.cfg.OwnerDomain)
		e.Uint32(claimNull)
		e.String(name)
	}, res: func(d *sunrpc.Decoder) {
		skipStateID(d)
		skipChangeInfo(d)
		d.Uint32()      // rflags
		decodeBitmap(d) // attrset
		switch deleg := d.Uint32(); deleg {
		case openDelegNone:
		case openDelegNoneExt:
			if why := d.Uint32(); why == whyNoDelegContend || why == whyNoDelegResrc {
				d.Bool()
			}
		default:
			// A delegation although none was wanted: it is returned with the CLOSE's
			// state; the server recalls it from nobody (there is no back channel).
			d.Fail(fmt.Errorf("OPEN granted delegation type %d although none was wanted", deleg))
		}
	}}
	cl := op{code: opClose, args: func(e *sunrpc.Encoder) {
		e.Uint32(0)
		currentStateID.encode(e)
	}, res: skipStateID}
	err := c.compound(ctx, "CREATE", cr, true, putFH(dir), open, getFH(&fh), getattr(madeAttrs, &a), cl)
	return fh, a, err
}

// SetAttr sets sa on fh (the anonymous stateid: no open is needed to set a size).
func (c *Client) SetAttr(ctx context.Context, fh []byte, sa SetAttr, cr *sunrpc.Cred) error {
	set := op{code: opSetattr, args: func(e *sunrpc.Encoder) {
		anonymousStateID.encode(e)
		encodeSetAttr(e, sa, c.cfg.OwnerDomain)
	}, res: func(d *sunrpc.Decoder) { decodeBitmap(d) }}
	return c.compound(ctx, "SETATTR", cr, true, putFH(fh), set)
}

// Remove removes name from dir: a file, or an empty directory (NFSv4 has one operation for both).
func (c *Client) Remove(ctx context.Context, dir []byte, name string, cr *sunrpc.Cred) error {
	return c.compound(ctx, "REMOVE", cr, true, putFH(dir), remove(name))
}

// RemoveKind removes name from dir when it is a directory (dir true) or when it is not (dir
// false), checking its type with VERIFY or NVERIFY in the same COMPOUND: what is there and of
// the other kind is NFS4ERR_NOTDIR or NFS4ERR_ISDIR, as NFSv3's RMDIR and REMOVE answer.
func (c *Client) RemoveKind(ctx context.Context, dirFH []byte, name string, dir bool, cr *sunrpc.Cred) error {
	check := op{code: opNverify, args: typeIs(TypeDir)}
	what, mismatch, other := "REMOVE", uint32(statusSame), uint32(StatusIsDir)
	if dir {
		check.code, what, mismatch, other = opVerify, "RMDIR", statusNotSame, StatusNotDir
	}
	err := c.compound(ctx, what, cr, true, putFH(dirFH), lookup(name), check, putFH(dirFH), remove(name))
	var se *StatusError
	if errors.As(err, &se) && se.Status == mismatch {
		se.Status = other
	}
	return err
}

func remove(name string) op {
	return op{code: opRemove, args: func(e *sunrpc.Encoder) { e.String(name) }, res: skipChangeInfo}
}

// typeIs is the fattr4 of VERIFY and NVERIFY: the type attribute alone.
func typeIs(typ uint32) func(*sunrpc.Encoder) {
	return func(e *sunrpc.Encoder) {
		bits(attrType).encode(e)
		e.Uint32(4)
		e.Uint32(typ)
	}
}

// Rename renames from in fromDir to to in toDir.
func (c *Client) Rename(ctx context.Context, fromDir []byte, from string, toDir []byte, to string, cr *sunrpc.Cred) error {
	rn := op{code: opRename, args: func(e *sunrpc.Encoder) {
		e.String(from)
		e.String(to)
	}, res: func(d *sunrpc.Decoder) {
		skipChangeInfo(d)
		skipChangeInfo(d)
	}}
	return c.compound(ctx, "RENAME", cr, true, putFH(fromDir), op{code: opSaveFH}, putFH(toDir), rn)
}

// Entry is one READDIR entry, with the entry's attributes and handle (Attr.FH) when the server
// could read them (Attr.RdattrErr is 0).
type Entry struct {
	Name   string
	Cookie uint64
	Attr   Attr
}

// entryAttrs are what READDIR asks of each entry: its handle (as READDIRPLUS gives) and the
// attributes of objAttrs, with rdattr_error so that one unreadable entry fails only itself.
var entryAttrs = objAttrs | bits(attrRdattrError, attrFileHandle)

// ReadDir reads one page of dir from cookie (0 and the zero verifier at first): at most the
// configured ReaddirBytes of entries. "." and ".." are never among them in NFSv4.
func (c *Client) ReadDir(ctx context.Context, dir []byte, cookie uint64, verf [8]byte, cr *sunrpc.Cred) (ents []Entry, next [8]byte, eof bool, err error) {
	rd := op{code: opReaddir, args: func(e *sunrpc.Encoder) {
		e.Uint64(cookie)
		e.Fixed(verf[:])
		e.Uint32(c.cfg.ReaddirBytes / 2) // dircount
		e.Uint32(c.cfg.ReaddirBytes)
		entryAttrs.encode(e)
	}, res: func(d *sunrpc.Decoder) {
		copy(next[:], d.Fixed(8))
		for d.Err == nil && d.Bool() {
			var en Entry
			en.Cookie = d.Uint64()
			en.Name = string(d.Opaque(nameMax))
			en.Attr = decodeFattr(d)
			if d.Err == nil {
				ents = append(ents, en)
			}
		}
		eof = d.Bool()
	}}
	err = c.compound(ctx, "READDIR", cr, false, putFH(dir), rd)
	if err != nil {
		return nil, [8]byte{}, false, err
	}
	return ents, next, eof, nil
}

// Capacity is GETATTR space_avail, space_free, space_total and the files counts of fh's file system.
func (c *Client) Capacity(ctx context.Context, fh []byte, cr *sunrpc.Cred) (Attr, error) {
	var a Attr
	want := bits(attrFilesAvail, attrFilesFree, attrFilesTotal, attrSpaceAvail, attrSpaceFree, attrSpaceTotal)
	err := c.compound(ctx, "GETATTR", cr, false, putFH(fh), getattr(want, &a))
	return a, err
}

// IOSize is GETATTR maxread and maxwrite of fh's file system, bounded by what the session's
// records hold.
func (c *Client) IOSize(ctx context.Context, fh []byte, cr *sunrpc.Cred) (maxRead, maxWrite uint64, err error) {
	var a Attr
	if err := c.compound(ctx, "GETATTR", cr, false, putFH(fh), getattr(bits(attrMaxRead, attrMaxWrite), &a)); err != nil {
		return 0, 0, err
	}
	s, err := c.current(ctx)
	if err != nil {
		return 0, 0, err
	}
	const overhead = 1024 // RPC and COMPOUND headers, SEQUENCE, PUTFH, the WRITE's own arguments
	room := func(n uint32) uint64 { return uint64(max(n, 2*overhead) - overhead) }
	maxRead = min(a.MaxRead, room(s.maxResponse))
	maxWrite = min(a.MaxWrite, room(s.maxRequest))
	if maxRead == 0 || maxWrite == 0 {
		return 0, 0, fmt.Errorf("%w: maxread %d, maxwrite %d", sunrpc.ErrProtocol, a.MaxRead, a.MaxWrite)
	}
	return maxRead, maxWrite, nil
}

// Read reads into p from off with the anonymous stateid.
func (c *Client) Read(ctx context.Context, fh []byte, p []byte, off uint64, cr *sunrpc.Cred) (n int, eof bool, err error) {
	rd := op{code: opRead, args: func(e *sunrpc.Encoder) {
		anonymousStateID.encode(e)
		e.Uint64(off)
		e.Uint32(uint32(len(p)))
	}, res: func(d *sunrpc.Decoder) {
		eof = d.Bool()
		n = copy(p, d.Opaque(uint32(len(p))))
	}}
	err = c.compound(ctx, "READ", cr, false, putFH(fh), rd)
	return n, eof, err
}

// stable_how4 of WRITE.
const (
	WriteUnstable = 0
	WriteFileSync = 2
)

// Write writes data at off with the anonymous stateid and returns how stably the server took it
// and its write verifier; a short write is an error.
func (c *Client) Write(ctx context.Context, fh []byte, off uint64, stable uint32, data []byte, cr *sunrpc.Cred) (committed uint32, verf [8]byte, err error) {
	var count uint32
	wr := op{code: opWrite, args: func(e *sunrpc.Encoder) {
		anonymousStateID.encode(e)
		e.Uint64(off)
		e.Uint32(stable)
		e.Opaque(data)
	}, res: func(d *sunrpc.Decoder) {
		count, committed = d.Uint32(), d.Uint32()
		copy(verf[:], d.Fixed(8))
	}}
	// Writing the same bytes at the same offset again is harmless: no reply cache is needed.
	err = c.compound(ctx, "WRITE", cr, false, putFH(fh), wr)
	if err == nil && int(count) != len(data) {
		err = fmt.Errorf("%w: WRITE took %d of %d bytes", sunrpc.ErrProtocol, count, len(data))
	}
	return committed, verf, err
}

// Commit commits fh's unstable writes and returns the server's write verifier.
func (c *Client) Commit(ctx context.Context, fh []byte, cr *sunrpc.Cred) (verf [8]byte, err error) {
	cm := op{code: opCommit, args: func(e *sunrpc.Encoder) {
		e.Uint64(0)
		e.Uint32(0) // to the end of the file
	}, res: func(d *sunrpc.Decoder) { copy(verf[:], d.Fixed(8)) }}
	err = c.compound(ctx, "COMMIT", cr, false, putFH(fh), cm)
	return verf, err
}

// Readlink returns a symbolic link's target.
func (c *Client) Readlink(ctx context.Context, fh []byte, cr *sunrpc.Cred) (target string, err error) {
	rl := op{code: opReadlink, res: func(d *sunrpc.Decoder) { target = string(d.Opaque(nameMax)) }}
	err = c.compound(ctx, "READLINK", cr, false, putFH(fh), rl)
	return target, err
}
