package wire

// Server-side encoders of the replies this package decodes, for seeds of
// the fuzz corpus and for decoder tests.

func encFattr(e *encoder, a attrs) {
	e.uint32(a.typ)
	e.uint32(a.mode)
	e.uint32(a.nlink)
	e.uint32(a.uid)
	e.uint32(a.gid)
	e.uint64(a.size) // size
	e.uint64(a.used) // used
	e.uint32(0)      // rdev
	e.uint32(0)
	e.uint64(1)                                                        // fsid
	e.uint64(42)                                                       // fileid
	for _, t := range []nfsTime{a.atime, a.mtime, {sec: 1700000000}} { // ctime last
		e.uint32(t.sec)
		e.uint32(t.nsec)
	}
}

func encPostOp(e *encoder, a *attrs) {
	e.bool(a != nil)
	if a != nil {
		encFattr(e, *a)
	}
}

func encWcc(e *encoder, a *attrs) {
	e.bool(true)
	e.uint64(4096)
	e.uint64(1)
	e.uint64(2)
	encPostOp(e, a)
}

var (
	seedDir  = attrs{typ: nf3Dir, mode: 0o755, uid: 1000, gid: 1000, nlink: 2, size: 4096, used: 4096, atime: nfsTime{1700000000, 5}, mtime: nfsTime{1700000001, 6}}
	seedFile = attrs{typ: 1, mode: 0o644, nlink: 1, size: 5, used: 4096, atime: nfsTime{1700000002, 7}, mtime: nfsTime{1700000003, 8}}
	seedFH   = []byte("0123456789abcdef0123456789abcdef")
)

func lookupOK(fh []byte, a *attrs) []byte {
	e := encoder{}
	e.uint32(0)
	e.opaque(fh)
	encPostOp(&e, a)
	encPostOp(&e, &seedDir)
	return e.b
}

func getattrOK(a attrs) []byte {
	e := encoder{}
	e.uint32(0)
	encFattr(&e, a)
	return e.b
}

func mkdirOK(fh []byte, a *attrs) []byte {
	e := encoder{}
	e.uint32(0)
	e.bool(fh != nil)
	if fh != nil {
		e.opaque(fh)
	}
	encPostOp(&e, a)
	encWcc(&e, &seedDir)
	return e.b
}

func wccRes(status uint32, n int) []byte {
	e := encoder{}
	e.uint32(status)
	for i := 0; i < n; i++ {
		encWcc(&e, &seedDir)
	}
	return e.b
}

func statusOnly(status uint32) []byte {
	e := encoder{}
	e.uint32(status)
	e.bool(false)
	return e.b
}

func readdirplusOK(ents []dirEntry, eof bool) []byte {
	e := encoder{}
	e.uint32(0)
	encPostOp(&e, &seedDir)
	e.fixed([]byte("verifier"))
	for _, en := range ents {
		e.bool(true)
		e.uint64(7)
		e.string(en.name)
		e.uint64(en.cookie)
		if en.haveAttrs {
			encPostOp(&e, &en.attrs)
		} else {
			encPostOp(&e, nil)
		}
		e.bool(en.fh != nil)
		if en.fh != nil {
			e.opaque(en.fh)
		}
	}
	e.bool(false)
	e.bool(eof)
	return e.b
}

func mntOK(fh []byte) []byte {
	e := encoder{}
	e.uint32(0)
	e.opaque(fh)
	e.uint32(2)
	e.uint32(authNone)
	e.uint32(authSys)
	return e.b
}

func readOK(data []byte, eof bool) []byte {
	e := encoder{}
	e.uint32(0)
	encPostOp(&e, &seedFile)
	e.uint32(uint32(len(data)))
	e.bool(eof)
	e.opaque(data)
	return e.b
}

var seedVerf = []byte("wrverf01")

func writeOK(count, committed uint32) []byte {
	e := encoder{}
	e.uint32(0)
	encWcc(&e, &seedFile)
	e.uint32(count)
	e.uint32(committed)
	e.fixed(seedVerf)
	return e.b
}

func commitOK() []byte {
	e := encoder{}
	e.uint32(0)
	encWcc(&e, &seedFile)
	e.fixed(seedVerf)
	return e.b
}

func readlinkOK(target string) []byte {
	e := encoder{}
	e.uint32(0)
	encPostOp(&e, nil)
	e.string(target)
	return e.b
}

func fsinfoOK(rtmax, wtmax uint32) []byte {
	e := encoder{}
	e.uint32(0)
	encPostOp(&e, &seedDir)
	for _, v := range []uint32{rtmax, rtmax, 4096, wtmax, wtmax, 4096, 32768} {
		e.uint32(v)
	}
	e.uint64(1 << 40) // maxfilesize
	e.uint32(0)       // time_delta
	e.uint32(1)
	e.uint32(0x1b) // properties
	return e.b
}
