package wire

// Server-side encoders of the replies this package decodes, for seeds of
// the fuzz corpus and for decoder tests.

func encFattr(e *encoder, a attrs) {
	e.Uint32(a.typ)
	e.Uint32(a.mode)
	e.Uint32(a.nlink)
	e.Uint32(a.uid)
	e.Uint32(a.gid)
	e.Uint64(a.size) // size
	e.Uint64(a.used) // used
	e.Uint32(0)      // rdev
	e.Uint32(0)
	e.Uint64(1)                                                        // fsid
	e.Uint64(42)                                                       // fileid
	for _, t := range []nfsTime{a.atime, a.mtime, {sec: 1700000000}} { // ctime last
		e.Uint32(t.sec)
		e.Uint32(t.nsec)
	}
}

func encPostOp(e *encoder, a *attrs) {
	e.Bool(a != nil)
	if a != nil {
		encFattr(e, *a)
	}
}

func encWcc(e *encoder, a *attrs) {
	e.Bool(true)
	e.Uint64(4096)
	e.Uint64(1)
	e.Uint64(2)
	encPostOp(e, a)
}

var (
	seedDir  = attrs{typ: nf3Dir, mode: 0o755, uid: 1000, gid: 1000, nlink: 2, size: 4096, used: 4096, atime: nfsTime{1700000000, 5}, mtime: nfsTime{1700000001, 6}}
	seedFile = attrs{typ: 1, mode: 0o644, nlink: 1, size: 5, used: 4096, atime: nfsTime{1700000002, 7}, mtime: nfsTime{1700000003, 8}}
	seedFH   = []byte("0123456789abcdef0123456789abcdef")
)

func lookupOK(fh []byte, a *attrs) []byte {
	e := encoder{}
	e.Uint32(0)
	e.Opaque(fh)
	encPostOp(&e, a)
	encPostOp(&e, &seedDir)
	return e.B
}

func getattrOK(a attrs) []byte {
	e := encoder{}
	e.Uint32(0)
	encFattr(&e, a)
	return e.B
}

func mkdirOK(fh []byte, a *attrs) []byte {
	e := encoder{}
	e.Uint32(0)
	e.Bool(fh != nil)
	if fh != nil {
		e.Opaque(fh)
	}
	encPostOp(&e, a)
	encWcc(&e, &seedDir)
	return e.B
}

func wccRes(status uint32, n int) []byte {
	e := encoder{}
	e.Uint32(status)
	for i := 0; i < n; i++ {
		encWcc(&e, &seedDir)
	}
	return e.B
}

func statusOnly(status uint32) []byte {
	e := encoder{}
	e.Uint32(status)
	e.Bool(false)
	return e.B
}

func readdirplusOK(ents []dirEntry, eof bool) []byte {
	e := encoder{}
	e.Uint32(0)
	encPostOp(&e, &seedDir)
	e.Fixed([]byte("verifier"))
	for _, en := range ents {
		e.Bool(true)
		e.Uint64(7)
		e.String(en.name)
		e.Uint64(en.cookie)
		if en.haveAttrs {
			encPostOp(&e, &en.attrs)
		} else {
			encPostOp(&e, nil)
		}
		e.Bool(en.fh != nil)
		if en.fh != nil {
			e.Opaque(en.fh)
		}
	}
	e.Bool(false)
	e.Bool(eof)
	return e.B
}

const (
	authNone = 0 // RFC 5531 auth flavors
	authSys  = 1
)

func mntOK(fh []byte) []byte {
	e := encoder{}
	e.Uint32(0)
	e.Opaque(fh)
	e.Uint32(2)
	e.Uint32(authNone)
	e.Uint32(authSys)
	return e.B
}

func readOK(data []byte, eof bool) []byte {
	e := encoder{}
	e.Uint32(0)
	encPostOp(&e, &seedFile)
	e.Uint32(uint32(len(data)))
	e.Bool(eof)
	e.Opaque(data)
	return e.B
}

var seedVerf = []byte("wrverf01")

func writeOK(count, committed uint32) []byte {
	e := encoder{}
	e.Uint32(0)
	encWcc(&e, &seedFile)
	e.Uint32(count)
	e.Uint32(committed)
	e.Fixed(seedVerf)
	return e.B
}

func commitOK() []byte {
	e := encoder{}
	e.Uint32(0)
	encWcc(&e, &seedFile)
	e.Fixed(seedVerf)
	return e.B
}

func readlinkOK(target string) []byte {
	e := encoder{}
	e.Uint32(0)
	encPostOp(&e, nil)
	e.String(target)
	return e.B
}

func fsinfoOK(rtmax, wtmax uint32) []byte {
	e := encoder{}
	e.Uint32(0)
	encPostOp(&e, &seedDir)
	for _, v := range []uint32{rtmax, rtmax, 4096, wtmax, wtmax, 4096, 32768} {
		e.Uint32(v)
	}
	e.Uint64(1 << 40) // maxfilesize
	e.Uint32(0)       // time_delta
	e.Uint32(1)
	e.Uint32(0x1b) // properties
	return e.B
}
