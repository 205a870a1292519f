package wire

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc/rpctest"
)

// Fuzz tests of every reply decoder. `go test` runs the seed corpus in
// testdata/fuzz; `go test -fuzz FuzzX` explores. A decoder must return an
// error for anything malformed; the recover() in each decoder turns a
// panic into an error that mentions it, which fails the fuzz test here
// so that the fuzzer reports it rather than hiding it.

func noPanic(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), "panic") {
		t.Fatalf("decoder panicked: %v", err)
	}
}

func checkFH(t *testing.T, fh []byte) {
	t.Helper()
	if len(fh) > fhSize {
		t.Fatalf("handle of %d bytes", len(fh))
	}
}

func FuzzDecodeLookup(f *testing.F) {
	f.Fuzz(func(t *testing.T, res []byte) {
		fh, _, _, err := decodeLookup(res)
		noPanic(t, err)
		checkFH(t, fh)
		if err == nil && len(fh) == 0 {
			t.Fatal("success without a handle")
		}
	})
}

func FuzzDecodeGetattr(f *testing.F) {
	f.Fuzz(func(t *testing.T, res []byte) {
		a, err := decodeGetattr(res)
		noPanic(t, err)
		if err == nil && a.mode > 0o7777 {
			t.Fatalf("mode %o", a.mode)
		}
	})
}

func FuzzDecodeMkdir(f *testing.F) {
	f.Fuzz(func(t *testing.T, res []byte) {
		fh, _, _, err := decodeMkdir(res)
		noPanic(t, err)
		checkFH(t, fh)
	})
}

// FuzzDecodeWcc covers SETATTR, REMOVE and RMDIR (one wcc_data) and RENAME
// (two): the first byte of the input chooses.
func FuzzDecodeWcc(f *testing.F) {
	f.Fuzz(func(t *testing.T, res []byte) {
		n := 1
		if len(res) > 0 && res[0]&0x80 != 0 {
			n = 2
		}
		noPanic(t, decodeWcc(res, "WCC", n))
	})
}

func FuzzDecodeReaddirplus(f *testing.F) {
	f.Fuzz(func(t *testing.T, res []byte) {
		ents, _, _, err := decodeReaddirplus(res)
		noPanic(t, err)
		for _, e := range ents {
			checkFH(t, e.fh)
			if len(e.name) > maxNameSize {
				t.Fatalf("name of %d bytes", len(e.name))
			}
		}
		if len(ents)*8 > len(res) {
			t.Fatalf("%d entries from %d bytes", len(ents), len(res))
		}
	})
}

func FuzzDecodeMnt(f *testing.F) {
	f.Fuzz(func(t *testing.T, res []byte) {
		fh, err := decodeMnt(res)
		noPanic(t, err)
		checkFH(t, fh)
		if err == nil && len(fh) == 0 {
			t.Fatal("success without a handle")
		}
	})
}

func FuzzDecodeGetport(f *testing.F) {
	f.Fuzz(func(t *testing.T, res []byte) {
		port, err := decodeGetport(res)
		noPanic(t, err)
		if port < 0 || port > 65535 {
			t.Fatalf("port %d", port)
		}
	})
}

func FuzzDecodeRead(f *testing.F) {
	f.Fuzz(func(t *testing.T, res []byte) {
		p := make([]byte, 64)
		n, _, err := decodeRead(res, p)
		noPanic(t, err)
		if n < 0 || n > len(p) {
			t.Fatalf("read %d bytes into %d", n, len(p))
		}
	})
}

// FuzzDecodeWriteCommit covers WRITE and COMMIT, whose results share their shape up to the verifier.
func FuzzDecodeWriteCommit(f *testing.F) {
	f.Fuzz(func(t *testing.T, res []byte) {
		_, _, _, err := decodeWrite(res)
		noPanic(t, err)
		_, err = decodeCommit(res)
		noPanic(t, err)
	})
}

func FuzzDecodeReadlinkFsinfo(f *testing.F) {
	f.Fuzz(func(t *testing.T, res []byte) {
		target, err := decodeReadlink(res)
		noPanic(t, err)
		if len(target) > maxNameSize {
			t.Fatalf("target of %d bytes", len(target))
		}
		_, _, err = decodeFsinfo(res)
		noPanic(t, err)
	})
}

// TestWriteFuzzCorpus regenerates the seed corpus from valid replies (and
// a few broken ones) when WIRE_WRITE_FUZZ_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("WIRE_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set WIRE_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz")
	}
	ents := []dirEntry{
		{name: ".", cookie: 1, haveAttrs: true, attrs: seedDir},
		{name: "sub", cookie: 2, haveAttrs: true, attrs: seedDir, fh: seedFH},
		{name: "file.txt", cookie: 3, haveAttrs: true, attrs: seedFile, fh: seedFH},
		{name: "bare", cookie: 4},
	}
	corpus := map[string][][]byte{
		"FuzzDecodeLookup":         {lookupOK(seedFH, &seedDir), lookupOK(seedFH, nil), statusOnly(2), lookupOK(nil, nil)},
		"FuzzDecodeGetattr":        {getattrOK(seedDir), getattrOK(seedFile), rpctest.Words(70)},
		"FuzzDecodeMkdir":          {mkdirOK(seedFH, &seedDir), mkdirOK(nil, nil), wccRes(17, 1)},
		"FuzzDecodeWcc":            {wccRes(0, 1), wccRes(66, 1), append([]byte{0x80}, wccRes(0, 2)...), wccRes(0, 2)},
		"FuzzDecodeReaddirplus":    {readdirplusOK(ents, true), readdirplusOK(nil, false), statusOnly(10003)},
		"FuzzDecodeMnt":            {mntOK(seedFH), rpctest.Words(13), rpctest.Words(0, 65)},
		"FuzzDecodeGetport":        {rpctest.Words(2049), rpctest.Words(0), rpctest.Words(70000), nil},
		"FuzzDecodeRead":           {readOK([]byte("hello"), true), readOK(make([]byte, 100), false), statusOnly(13)},
		"FuzzDecodeWriteCommit":    {writeOK(5, writeUnstable), commitOK(), wccRes(28, 1)},
		"FuzzDecodeReadlinkFsinfo": {readlinkOK("../target"), fsinfoOK(1<<20, 1<<20), statusOnly(70)},
	}
	for name, seeds := range corpus {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s)))
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
