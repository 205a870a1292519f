package wire

import (
	"fmt"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
)

// NFS v3 (RFC 1813) arguments and result decoders for the procedures this
// package uses. Decoders copy what they return out of the reply record.

const (
	fhSize      = 64   // NFS3_FHSIZE
	maxNameSize = 4096 // generous; servers limit names to 255 bytes
	nf3Dir      = nfsc.NF3Dir
)

func nfsProc(proc uint32, name string) procedure {
	return procedure{Prog: nfsc.Nfs3Prog, Vers: nfsc.Nfs3Vers, Proc: proc, Name: name}
}

var (
	procNull        = nfsProc(0, "NULL")
	procGetattr     = nfsProc(nfsc.NFSProc3GetAttr, "GETATTR")
	procSetattr     = nfsProc(nfsc.NFSProc3SetAttr, "SETATTR")
	procLookup      = nfsProc(nfsc.NFSProc3Lookup, "LOOKUP")
	procMkdir       = nfsProc(nfsc.NFSProc3Mkdir, "MKDIR")
	procRemove      = nfsProc(nfsc.NFSProc3Remove, "REMOVE")
	procRmdir       = nfsProc(nfsc.NFSProc3RmDir, "RMDIR")
	procRename      = nfsProc(nfsc.NFSProc3Rename, "RENAME")
	procReaddirplus = nfsProc(nfsc.NFSProc3ReadDirPlus, "READDIRPLUS")
	procFsstat      = nfsProc(18, "FSSTAT") // NFSPROC3_FSSTAT
	procReadlink    = nfsProc(nfsc.NFSProc3Readlink, "READLINK")
	procRead        = nfsProc(nfsc.NFSProc3Read, "READ")
	procWrite       = nfsProc(nfsc.NFSProc3Write, "WRITE")
	procCreate      = nfsProc(nfsc.NFSProc3Create, "CREATE")
	procSymlink     = nfsProc(nfsc.NFSProc3Symlink, "SYMLINK")
	procFsinfo      = nfsProc(nfsc.NFSProc3FSInfo, "FSINFO")
	procCommit      = nfsProc(nfsc.NFSProc3Commit, "COMMIT")
)

// ftype3 values besides NF3DIR.
const (
	nf3Reg = 1
	nf3Lnk = 5
)

// attrs is the part of fattr3 this package uses.
type attrs struct {
	typ, mode, uid, gid uint32
	nlink               uint32
	size, used          uint64 // bytes; used is the space the object takes on the server
	atime, mtime        nfsTime
}

// nfsTime is nfstime3.
type nfsTime struct{ sec, nsec uint32 }

func decodeTime(d *decoder) nfsTime { return nfsTime{sec: d.Uint32(), nsec: d.Uint32()} }

func (a attrs) isDir() bool { return a.typ == nf3Dir }

func fattr(d *decoder) attrs {
	var a attrs
	a.typ = d.Uint32()
	a.mode = d.Uint32() & 0o7777
	a.nlink = d.Uint32()
	a.uid = d.Uint32()
	a.gid = d.Uint32()
	a.size = d.Uint64()
	a.used = d.Uint64()
	d.Skip(8 + 8 + 8) // rdev, fsid, fileid
	a.atime, a.mtime = decodeTime(d), decodeTime(d)
	d.Skip(8) // ctime
	if d.Err == nil && (a.typ < 1 || a.typ > 7) {
		d.Fail(fmt.Errorf("%w: bad ftype3 %d", sunrpc.ErrProtocol, a.typ))
	}
	return a
}

func postOpAttr(d *decoder) (attrs, bool) {
	if !d.Bool() {
		return attrs{}, false
	}
	return fattr(d), true
}

func skipWcc(d *decoder) {
	if d.Bool() { // pre_op_attr: size, mtime, ctime
		d.Skip(8 + 8 + 8)
	}
	postOpAttr(d)
}

func nfsFH(d *decoder) []byte {
	p := d.Opaque(fhSize)
	if d.Err != nil {
		return nil
	}
	if len(p) == 0 {
		d.Fail(fmt.Errorf("%w: empty file handle", sunrpc.ErrProtocol))
		return nil
	}
	return append([]byte(nil), p...)
}

func postOpFH(d *decoder) []byte {
	if !d.Bool() {
		return nil
	}
	return nfsFH(d)
}

func readStatus(d *decoder) uint32 { return d.Uint32() }

func decodeErr(d *decoder, what string) error {
	if d.Err != nil {
		return fmt.Errorf("%w: %s reply: %v", sunrpc.ErrProtocol, what, d.Err)
	}
	return nil
}

// sattr is what MKDIR, CREATE, SYMLINK and SETATTR set: the mode unless
// noMode, the owner when setOwner, the size when setSize, the times when
// setTimes.
type sattr struct {
	mode         uint32
	uid, gid     uint32
	setOwner     bool
	noMode       bool
	setSize      bool
	size         uint64
	setTimes     bool
	atime, mtime nfsTime
}

func sattr3(e *encoder, s sattr) {
	e.Bool(!s.noMode)
	if !s.noMode {
		e.Uint32(s.mode & 0o7777)
	}
	e.Bool(s.setOwner)
	if s.setOwner {
		e.Uint32(s.uid)
	}
	e.Bool(s.setOwner)
	if s.setOwner {
		e.Uint32(s.gid)
	}
	e.Bool(s.setSize)
	if s.setSize {
		e.Uint64(s.size)
	}
	for _, t := range []nfsTime{s.atime, s.mtime} {
		if !s.setTimes {
			e.Uint32(0) // DONT_CHANGE
			continue
		}
		e.Uint32(2) // SET_TO_CLIENT_TIME
		e.Uint32(t.sec)
		e.Uint32(t.nsec)
	}
}

func diropArgs(fh []byte, name string) func(*encoder) {
	return func(e *encoder) {
		e.Opaque(fh)
		e.String(name)
	}
}

func fhArgs(fh []byte) func(*encoder) {
	return func(e *encoder) { e.Opaque(fh) }
}

func mkdirArgs(fh []byte, name string, s sattr) func(*encoder) {
	return func(e *encoder) {
		e.Opaque(fh)
		e.String(name)
		sattr3(e, s)
	}
}

func setattrArgs(fh []byte, s sattr) func(*encoder) {
	return func(e *encoder) {
		e.Opaque(fh)
		sattr3(e, s)
		e.Bool(false) // no guard
	}
}

func renameArgs(fromFH []byte, from string, toFH []byte, to string) func(*encoder) {
	return func(e *encoder) {
		e.Opaque(fromFH)
		e.String(from)
		e.Opaque(toFH)
		e.String(to)
	}
}

func readdirplusArgs(fh []byte, cookie uint64, verf [8]byte, maxcount uint32) func(*encoder) {
	return func(e *encoder) {
		e.Opaque(fh)
		e.Uint64(cookie)
		e.Fixed(verf[:])
		e.Uint32(maxcount / 2) // dircount
		e.Uint32(maxcount)
	}
}

// decodeResult decodes an NFSv3 result: its status; then common, what the result holds whatever
// the status (wcc_data, a post_op_attr; nil for none); then, for NFS3_OK, ok, the rest. A
// malformed or truncated reply is sunrpc.ErrProtocol (a panic in a decoder too); another status is its
// StatusError.
func decodeResult(res []byte, proc string, common, ok func(*decoder)) (err error) {
	defer sunrpc.RecoverTo(&err, proc)
	d := &decoder{B: res}
	st := readStatus(d)
	if common != nil {
		common(d)
	}
	if st != nfsc.NFS3Ok {
		return firstErr(decodeErr(d, proc), nfsStatus(st))
	}
	if ok != nil {
		ok(d)
	}
	return decodeErr(d, proc)
}

// decodeLookup decodes LOOKUP3res.
func decodeLookup(res []byte) (fh []byte, a attrs, haveAttrs bool, err error) {
	err = decodeResult(res, "LOOKUP", nil, func(d *decoder) {
		fh = nfsFH(d)
		a, haveAttrs = postOpAttr(d)
		postOpAttr(d) // dir_attributes
	})
	if err != nil {
		return nil, attrs{}, false, err
	}
	return fh, a, haveAttrs, nil
}

// decodeGetattr decodes GETATTR3res.
func decodeGetattr(res []byte) (a attrs, err error) {
	err = decodeResult(res, "GETATTR", nil, func(d *decoder) { a = fattr(d) })
	if err != nil {
		return attrs{}, err
	}
	return a, nil
}

// decodeMkdir decodes MKDIR3res; the handle and attributes are optional.
func decodeMkdir(res []byte) (fh []byte, a attrs, haveAttrs bool, err error) {
	err = decodeResult(res, "MKDIR", nil, func(d *decoder) {
		fh = postOpFH(d)
		a, haveAttrs = postOpAttr(d)
		skipWcc(d)
	})
	if err != nil {
		return nil, attrs{}, false, err
	}
	return fh, a, haveAttrs, nil
}

// decodeWcc decodes the results of SETATTR, REMOVE and RMDIR (status and one wcc_data) and of
// RENAME (status and two). The bodies of errors are not needed: only a missing status is fatal.
func decodeWcc(res []byte, what string, n int) error {
	return decodeResult(res, what, nil, func(d *decoder) {
		for i := 0; i < n; i++ {
			skipWcc(d)
		}
	})
}

type dirEntry struct {
	name      string
	cookie    uint64
	fh        []byte // nil when the server sent none
	attrs     attrs
	haveAttrs bool
}

// decodeReaddirplus decodes READDIRPLUS3res.
func decodeReaddirplus(res []byte) (ents []dirEntry, verf [8]byte, eof bool, err error) {
	err = decodeResult(res, "READDIRPLUS", nil, func(d *decoder) {
		postOpAttr(d)
		copy(verf[:], d.Fixed(8))
		for d.Err == nil && d.Bool() {
			var en dirEntry
			d.Uint64() // fileid
			en.name = string(d.Opaque(maxNameSize))
			en.cookie = d.Uint64()
			en.attrs, en.haveAttrs = postOpAttr(d)
			en.fh = postOpFH(d)
			if d.Err == nil {
				ents = append(ents, en)
			}
		}
		eof = d.Bool()
	})
	if err != nil {
		return nil, [8]byte{}, false, err
	}
	return ents, verf, eof, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeFsstat decodes FSSTAT3res.
func decodeFsstat(res []byte) (c export.Capacity, err error) {
	err = decodeResult(res, "FSSTAT", func(d *decoder) { postOpAttr(d) }, func(d *decoder) {
		c.SizeBytes, c.FreeBytes, c.AvailableBytes = d.Uint64(), d.Uint64(), d.Uint64()
		c.TotalInodes, c.FreeInodes = d.Uint64(), d.Uint64()
		d.Uint64() // afiles
		d.Uint32() // invarsec
	})
	return c, err
}

// stable_how of WRITE.
const (
	writeUnstable = 0
	writeFileSync = 2
)

func readArgs(fh []byte, off uint64, count uint32) func(*encoder) {
	return func(e *encoder) {
		e.Opaque(fh)
		e.Uint64(off)
		e.Uint32(count)
	}
}

func writeArgs(fh []byte, off uint64, stable uint32, data []byte) func(*encoder) {
	return func(e *encoder) {
		e.Opaque(fh)
		e.Uint64(off)
		e.Uint32(uint32(len(data)))
		e.Uint32(stable)
		e.Opaque(data)
	}
}

// createArgs asks for a GUARDED create: anything at name is NFS3ERR_EXIST.
func createArgs(dir []byte, name string, s sattr) func(*encoder) {
	return func(e *encoder) {
		e.Opaque(dir)
		e.String(name)
		e.Uint32(1) // GUARDED
		sattr3(e, s)
	}
}

func symlinkArgs(dir []byte, name, target string, s sattr) func(*encoder) {
	return func(e *encoder) {
		e.Opaque(dir)
		e.String(name)
		sattr3(e, s)
		e.String(target)
	}
}

func commitArgs(fh []byte) func(*encoder) {
	return func(e *encoder) {
		e.Opaque(fh)
		e.Uint64(0)
		e.Uint32(0) // to the end of the file
	}
}

// decodeRead decodes READ3res into p; more data than p holds is a protocol error.
func decodeRead(res []byte, p []byte) (n int, eof bool, err error) {
	var data []byte
	err = decodeResult(res, "READ", nil, func(d *decoder) {
		postOpAttr(d)
		d.Uint32() // count, repeated by the data's length
		eof = d.Bool()
		data = d.Opaque(uint32(len(p)))
	})
	if err != nil {
		return 0, false, err
	}
	return copy(p, data), eof, nil
}

// decodeWrite decodes WRITE3res: how much the server took, how stably, and its write verifier.
func decodeWrite(res []byte) (count uint32, committed uint32, verf [8]byte, err error) {
	err = decodeResult(res, "WRITE", func(d *decoder) { skipWcc(d) }, func(d *decoder) {
		count, committed = d.Uint32(), d.Uint32()
		copy(verf[:], d.Fixed(8))
	})
	return count, committed, verf, err
}

// decodeCommit decodes COMMIT3res: the server's write verifier.
func decodeCommit(res []byte) (verf [8]byte, err error) {
	err = decodeResult(res, "COMMIT", func(d *decoder) { skipWcc(d) }, func(d *decoder) { copy(verf[:], d.Fixed(8)) })
	return verf, err
}

// decodeReadlink decodes READLINK3res.
func decodeReadlink(res []byte) (target string, err error) {
	err = decodeResult(res, "READLINK", nil, func(d *decoder) {
		postOpAttr(d)
		target = string(d.Opaque(maxNameSize))
	})
	if err != nil {
		return "", err
	}
	return target, nil
}

// decodeFsinfo decodes FSINFO3res: the largest read and write the server takes.
func decodeFsinfo(res []byte) (rtmax, wtmax uint32, err error) {
	err = decodeResult(res, "FSINFO", func(d *decoder) { postOpAttr(d) }, func(d *decoder) {
		rtmax = d.Uint32()
		d.Uint32() // rtpref
		d.Uint32() // rtmult
		wtmax = d.Uint32()
	})
	return rtmax, wtmax, err
}
