package nfs41

import (
	"fmt"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
)

// The NFSv4 program: NULL and COMPOUND (RFC 8881 section 16).
const (
	nfsProg      = 100003
	nfsVers      = 4
	minorVersion = 1
)

var (
	procNull     = sunrpc.Procedure{Prog: nfsProg, Vers: nfsVers, Proc: 0, Name: "NULL"}
	procCompound = sunrpc.Procedure{Prog: nfsProg, Vers: nfsVers, Proc: 1}
)

// Operation numbers (nfs_opnum4) of the operations this package sends.
const (
	opClose          = 4
	opCommit         = 5
	opCreate         = 6
	opGetattr        = 9
	opGetFH          = 10
	opNverify        = 17
	opLookup         = 15
	opOpen           = 18
	opPutFH          = 22
	opPutRootFH      = 24
	opRead           = 25
	opReaddir        = 26
	opReadlink       = 27
	opRemove         = 28
	opRename         = 29
	opSaveFH         = 32
	opSetattr        = 34
	opVerify         = 37
	opWrite          = 38
	opExchangeID     = 42
	opCreateSession  = 43
	opDestroySession = 44
	opSecinfoNoName  = 52
	opSequence       = 53
	opDestroyClient  = 57
	opReclaimDone    = 58
)

var opNames = map[uint32]string{
	opClose: "CLOSE", opCommit: "COMMIT", opCreate: "CREATE", opGetattr: "GETATTR", opGetFH: "GETFH", opNverify: "NVERIFY", opVerify: "VERIFY",
	opLookup: "LOOKUP", opOpen: "OPEN", opPutFH: "PUTFH", opPutRootFH: "PUTROOTFH", opRead: "READ",
	opReaddir: "READDIR", opReadlink: "READLINK", opRemove: "REMOVE", opRename: "RENAME", opSaveFH: "SAVEFH",
	opSetattr: "SETATTR", opWrite: "WRITE", opExchangeID: "EXCHANGE_ID", opCreateSession: "CREATE_SESSION",
	opDestroySession: "DESTROY_SESSION", opSecinfoNoName: "SECINFO_NO_NAME", opSequence: "SEQUENCE",
	opDestroyClient: "DESTROY_CLIENTID", opReclaimDone: "RECLAIM_COMPLETE",
}

func opName(op uint32) string {
	if n, ok := opNames[op]; ok {
		return n
	}
	return fmt.Sprintf("OP_%d", op)
}

// op is one operation of a COMPOUND: its arguments, and the decoder of its result when its
// status is NFS4_OK (nil when the result is the status alone).
type op struct {
	code uint32
	args func(*sunrpc.Encoder)
	res  func(*sunrpc.Decoder)
}

const (
	fhMax    = 128  // NFS4_FHSIZE
	nameMax  = 4096 // generous; servers limit names to 255 bytes
	ownerMax = 1024 // utf8str owner strings and opaque client owners
	maxOps   = 16   // the most operations a COMPOUND of this package holds
)

// encodeCompound writes COMPOUND4args: the tag (the operations' names, so a server's logs say
// what was asked), minor version 1 and the operations.
func encodeCompound(e *sunrpc.Encoder, tag string, ops []op) {
	e.String(tag)
	e.Uint32(minorVersion)
	e.Uint32(uint32(len(ops)))
	for _, o := range ops {
		e.Uint32(o.code)
		if o.args != nil {
			o.args(e)
		}
	}
}

// decodeCompound decodes COMPOUND4res: each result in turn until the first that failed, which is
// the returned *StatusError. A reply whose results do not match the operations sent, or that is
// malformed or truncated, is sunrpc.ErrProtocol; so is a panic in a decoder.
func decodeCompound(res []byte, ops []op) (err error) {
	defer sunrpc.RecoverTo(&err, "COMPOUND")
	d := &sunrpc.Decoder{B: res}
	status := d.Uint32()
	d.Opaque(nameMax) // tag
	n := d.Uint32()
	switch {
	case d.Err != nil:
		return fmt.Errorf("%w: COMPOUND reply: %v", sunrpc.ErrProtocol, d.Err)
	case n > uint32(len(ops)):
		return fmt.Errorf("%w: COMPOUND of %d operations answered with %d results", sunrpc.ErrProtocol, len(ops), n)
	case n == 0 && status != statOK:
		// A COMPOUND the server would not start (MINOR_VERS_MISMATCH, RESOURCE, ...).
		return &StatusError{Op: opName(ops[0].code), Status: status}
	}
	for i := uint32(0); i < n; i++ {
		o := ops[i]
		code, st := d.Uint32(), d.Uint32()
		if d.Err != nil {
			break
		}
		if code != o.code {
			return fmt.Errorf("%w: result %d is of operation %d, %s was sent", sunrpc.ErrProtocol, i, code, opName(o.code))
		}
		if st != statOK {
			return &StatusError{Op: opName(o.code), Status: st}
		}
		if o.res != nil {
			o.res(d)
		}
	}
	if d.Err != nil {
		return fmt.Errorf("%w: COMPOUND reply: %v", sunrpc.ErrProtocol, d.Err)
	}
	if n < uint32(len(ops)) || status != statOK {
		return fmt.Errorf("%w: COMPOUND of %d operations answered with %d results, all NFS4_OK, and status %s", sunrpc.ErrProtocol, len(ops), n, StatusName(status))
	}
	return nil
}

// stateid4: the anonymous one (all zeros) reads and writes without an open; the current one
// (seqid 1, other zeros) is the one the COMPOUND's OPEN just returned.
type stateID struct {
	seqid uint32
	other [12]byte
}

var (
	anonymousStateID = stateID{}
	currentStateID   = stateID{seqid: 1}
)

func (s stateID) encode(e *sunrpc.Encoder) {
	e.Uint32(s.seqid)
	e.Fixed(s.other[:])
}

func skipStateID(d *sunrpc.Decoder) { d.Skip(16) }

// skipChangeInfo skips change_info4 (atomic, before, after).
func skipChangeInfo(d *sunrpc.Decoder) {
	d.Bool()
	d.Skip(16)
}

// Operation arguments.

func putFH(fh []byte) op {
	return op{code: opPutFH, args: func(e *sunrpc.Encoder) { e.Opaque(fh) }}
}

func lookup(name string) op {
	return op{code: opLookup, args: func(e *sunrpc.Encoder) { e.String(name) }}
}

func getFH(fh *[]byte) op {
	return op{code: opGetFH, res: func(d *sunrpc.Decoder) {
		p := d.Opaque(fhMax)
		if d.Err == nil && len(p) == 0 {
			d.Fail(fmt.Errorf("empty file handle"))
		}
		*fh = append([]byte(nil), p...)
	}}
}

func getattr(want bitmap, a *Attr) op {
	return op{code: opGetattr, args: func(e *sunrpc.Encoder) { want.encode(e) }, res: func(d *sunrpc.Decoder) {
		*a = decodeFattr(d)
	}}
}
