package nfs41

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
)

// File attribute numbers (RFC 8881 section 5) this package reads or sets.
const (
	attrType         = 1
	attrChange       = 3
	attrSize         = 4
	attrFSID         = 8
	attrLeaseTime    = 10
	attrRdattrError  = 11
	attrFileHandle   = 19
	attrFileID       = 20
	attrFilesAvail   = 21
	attrFilesFree    = 22
	attrFilesTotal   = 23
	attrMaxRead      = 30
	attrMaxWrite     = 31
	attrMode         = 33
	attrNumLinks     = 35
	attrOwner        = 36
	attrOwnerGroup   = 37
	attrSpaceAvail   = 42
	attrSpaceFree    = 43
	attrSpaceTotal   = 44
	attrSpaceUsed    = 45
	attrTimeAccess   = 47
	attrTimeAccessSt = 48
	attrTimeModify   = 53
	attrTimeModifySt = 54
	maxAttr          = 63 // the highest attribute number a reply may carry here
)

// Object types (nfs_ftype4); NF4REG, NF4DIR and NF4LNK have NFSv3's numbers.
const (
	TypeReg = 1
	TypeDir = 2
	TypeLnk = 5
)

// bitmap is a bitmap4 of attribute numbers up to maxAttr.
type bitmap uint64

func bits(attrs ...int) bitmap {
	var b bitmap
	for _, a := range attrs {
		b |= 1 << a
	}
	return b
}

func (b bitmap) has(a int) bool { return b&(1<<a) != 0 }

func (b bitmap) encode(e *sunrpc.Encoder) {
	switch {
	case b>>32 != 0:
		e.Uint32(2)
		e.Uint32(uint32(b))
		e.Uint32(uint32(b >> 32))
	case b != 0:
		e.Uint32(1)
		e.Uint32(uint32(b))
	default:
		e.Uint32(0)
	}
}

// decodeBitmap reads a bitmap4; bits above maxAttr are taken only when zero.
func decodeBitmap(d *sunrpc.Decoder) bitmap {
	n := d.Uint32()
	if d.Err == nil && n > 8 {
		d.Fail(fmt.Errorf("bitmap4 of %d words", n))
	}
	var b bitmap
	for i := uint32(0); i < n && d.Err == nil; i++ {
		w := d.Uint32()
		switch {
		case i < 2:
			b |= bitmap(w) << (32 * i)
		case w != 0:
			d.Fail(fmt.Errorf("attribute %d and above are not asked for", 32*i))
		}
	}
	return b
}

// Time is nfstime4.
type Time struct {
	Sec  int64
	Nsec uint32
}

func decodeTime(d *sunrpc.Decoder) Time {
	t := Time{Sec: int64(d.Uint64()), Nsec: d.Uint32()}
	if d.Err == nil && t.Nsec >= 1e9 {
		d.Fail(fmt.Errorf("nfstime4 with %d nanoseconds", t.Nsec))
	}
	return t
}

// Attr is what this package reads of an object's fattr4: each field is set when the server
// sent its attribute (Has says which).
type Attr struct {
	Has        bitmap
	Type       uint32
	Mode       uint32
	Nlink      uint32
	UID, GID   uint32 // from numeric owner strings ("2000", "2000@domain"); Nobody otherwise
	Size, Used uint64
	Atime      Time
	Mtime      Time
	FH         []byte // READDIR entries: the entry's handle
	RdattrErr  uint32 // READDIR entries: why the attributes could not be read

	SpaceAvail, SpaceFree, SpaceTotal uint64
	FilesAvail, FilesFree, FilesTotal uint64
	MaxRead, MaxWrite                 uint64
	LeaseTime                         uint32
}

// EntryNeeds are the attributes a READDIR entry must carry to be taken without a LOOKUP: its
// handle, type, mode and owners (a missing owner would read as root).
const EntryNeeds = bitmap(1<<attrFileHandle | 1<<attrType | 1<<attrMode | 1<<attrOwner | 1<<attrOwnerGroup)

// Nobody is the uid and gid an owner string that is not a number maps to.
const Nobody = 65534

// decodeFattr reads a fattr4: the bitmap, then the attribute values in bit order from the
// attr_vals opaque, which must hold exactly them.
func decodeFattr(d *sunrpc.Decoder) Attr {
	var a Attr
	a.Has = decodeBitmap(d)
	vals := d.Opaque(1 << 20)
	if d.Err != nil {
		return a
	}
	v := &sunrpc.Decoder{B: vals}
	for n := 0; n <= maxAttr && v.Err == nil; n++ {
		if !a.Has.has(n) {
			continue
		}
		switch n {
		case attrType:
			a.Type = v.Uint32()
			if v.Err == nil && (a.Type < 1 || a.Type > 9) {
				v.Fail(fmt.Errorf("bad nfs_ftype4 %d", a.Type))
			}
		case attrChange, attrFileID:
			v.Uint64()
		case attrSize:
			a.Size = v.Uint64()
		case attrFSID:
			v.Skip(16)
		case attrLeaseTime:
			a.LeaseTime = v.Uint32()
		case attrRdattrError:
			a.RdattrErr = v.Uint32()
		case attrFileHandle:
			p := v.Opaque(fhMax)
			if v.Err == nil && len(p) == 0 {
				v.Fail(fmt.Errorf("empty file handle"))
			}
			a.FH = append([]byte(nil), p...)
		case attrFilesAvail:
			a.FilesAvail = v.Uint64()
		case attrFilesFree:
			a.FilesFree = v.Uint64()
		case attrFilesTotal:
			a.FilesTotal = v.Uint64()
		case attrMaxRead:
			a.MaxRead = v.Uint64()
		case attrMaxWrite:
			a.MaxWrite = v.Uint64()
		case attrMode:
			a.Mode = v.Uint32() & 0o7777
		case attrNumLinks:
			a.Nlink = v.Uint32()
		case attrOwner:
			a.UID = ParseOwner(string(v.Opaque(ownerMax)))
		case attrOwnerGroup:
			a.GID = ParseOwner(string(v.Opaque(ownerMax)))
		case attrSpaceAvail:
			a.SpaceAvail = v.Uint64()
		case attrSpaceFree:
			a.SpaceFree = v.Uint64()
		case attrSpaceTotal:
			a.SpaceTotal = v.Uint64()
		case attrSpaceUsed:
			a.Used = v.Uint64()
		case attrTimeAccess:
			a.Atime = decodeTime(v)
		case attrTimeModify:
			a.Mtime = decodeTime(v)
		default:
			v.Fail(fmt.Errorf("attribute %d was not asked for", n))
		}
	}
	if v.Err == nil && len(v.B) != 0 {
		v.Fail(fmt.Errorf("%d bytes after the attribute values", len(v.B)))
	}
	if v.Err != nil {
		d.Fail(fmt.Errorf("fattr4: %w", v.Err))
	}
	return a
}

// ParseOwner reads the uid or gid of a numeric owner string, "2000" or "2000@domain"; "root"
// (with or without a domain) is 0; any other name is Nobody, since this client has no name
// service to ask.
func ParseOwner(s string) uint32 {
	name, _, _ := strings.Cut(s, "@")
	if name == "root" {
		return 0
	}
	n, err := strconv.ParseUint(name, 10, 32)
	if err != nil || name == "" || name[0] == '+' {
		return Nobody
	}
	return uint32(n)
}

// FormatOwner is the owner string of id: the number, with "@domain" when a domain is set.
func FormatOwner(id uint32, domain string) string {
	s := strconv.FormatUint(uint64(id), 10)
	if domain != "" {
		s += "@" + domain
	}
	return s
}

// SetAttr is what CREATE, OPEN and SETATTR set: the mode unless NoMode, the owner when
// SetOwner, the size when SetSize, the times when SetTimes.
type SetAttr struct {
	Mode         uint32
	NoMode       bool
	SetOwner     bool
	UID, GID     uint32
	SetSize      bool
	Size         uint64
	SetTimes     bool
	Atime, Mtime Time
}

// encodeSetAttr writes sa as a fattr4, owners as strings of domain.
func encodeSetAttr(e *sunrpc.Encoder, sa SetAttr, domain string) {
	var b bitmap
	if sa.SetSize {
		b |= bits(attrSize)
	}
	if !sa.NoMode {
		b |= bits(attrMode)
	}
	if sa.SetOwner {
		b |= bits(attrOwner, attrOwnerGroup)
	}
	if sa.SetTimes {
		b |= bits(attrTimeAccessSt, attrTimeModifySt)
	}
	b.encode(e)
	v := sunrpc.Encoder{}
	if sa.SetSize {
		v.Uint64(sa.Size)
	}
	if !sa.NoMode {
		v.Uint32(sa.Mode & 0o7777)
	}
	if sa.SetOwner {
		v.String(FormatOwner(sa.UID, domain))
		v.String(FormatOwner(sa.GID, domain))
	}
	if sa.SetTimes {
		for _, t := range []Time{sa.Atime, sa.Mtime} {
			v.Uint32(1) // SET_TO_CLIENT_TIME4
			v.Uint64(uint64(t.Sec))
			v.Uint32(t.Nsec)
		}
	}
	e.Opaque(v.B)
}
