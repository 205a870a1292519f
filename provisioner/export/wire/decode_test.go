package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc/rpctest"
)

// Valid replies decode to what was encoded.

func TestDecodeValid(t *testing.T) {
	fh, a, ok, err := decodeLookup(lookupOK(seedFH, &seedDir))
	if err != nil || !bytes.Equal(fh, seedFH) || !ok || a != seedDir {
		t.Errorf("LOOKUP: %x %+v %v %v", fh, a, ok, err)
	}
	if _, _, _, err := decodeLookup(statusOnly(nfsc.NFS3ErrNoEnt)); !errors.Is(err, export.ErrNotExist) {
		t.Errorf("LOOKUP NOENT: %v", err)
	}
	if a, err := decodeGetattr(getattrOK(seedFile)); err != nil || a != seedFile {
		t.Errorf("GETATTR: %+v %v", a, err)
	}
	fh, _, ok, err = decodeMkdir(mkdirOK(nil, nil))
	if err != nil || fh != nil || ok {
		t.Errorf("MKDIR without handle: %x %v %v", fh, ok, err)
	}
	if _, _, _, err := decodeMkdir(wccRes(nfsc.NFS3ErrExist, 1)); !errors.Is(err, export.ErrExist) {
		t.Errorf("MKDIR EXIST: %v", err)
	}
	if err := decodeWcc(wccRes(0, 2), "RENAME", 2); err != nil {
		t.Errorf("RENAME: %v", err)
	}
	if err := decodeWcc(wccRes(0, 1), "RENAME", 2); !errors.Is(err, sunrpc.ErrProtocol) {
		t.Errorf("RENAME with one wcc: %v", err)
	}
	if err := decodeWcc(wccRes(nfsc.NFS3ErrNotEmpty, 1), "RMDIR", 1); !errors.Is(err, export.ErrExist) {
		t.Errorf("RMDIR NOTEMPTY: %v", err)
	}
	ents := []dirEntry{
		{name: "sub", cookie: 2, haveAttrs: true, attrs: seedDir, fh: seedFH},
		{name: "bare", cookie: 3},
	}
	got, verf, eof, err := decodeReaddirplus(readdirplusOK(ents, true))
	if err != nil || !eof || string(verf[:]) != "verifier" || !reflect.DeepEqual(got, ents) {
		t.Errorf("READDIRPLUS: %+v %q %v %v", got, verf, eof, err)
	}
	if fh, err := decodeMnt(mntOK(seedFH)); err != nil || !bytes.Equal(fh, seedFH) {
		t.Errorf("MNT: %x %v", fh, err)
	}
	if _, err := decodeMnt(rpctest.Words(nfsc.MNT3ErrAcces)); !errors.Is(err, export.ErrPermission) {
		t.Errorf("MNT ACCES: %v", err)
	}
	if p, err := decodeGetport(rpctest.Words(2049)); err != nil || p != 2049 {
		t.Errorf("GETPORT: %d %v", p, err)
	}
	buf := make([]byte, 16)
	if n, eof, err := decodeRead(readOK([]byte("hello"), true), buf); err != nil || n != 5 || !eof || string(buf[:n]) != "hello" {
		t.Errorf("READ: %d %v %v %q", n, eof, err, buf[:n])
	}
	if _, _, err := decodeRead(readOK(make([]byte, 17), false), buf); !errors.Is(err, sunrpc.ErrProtocol) {
		t.Errorf("READ of more than asked: %v, want a protocol error", err)
	}
	if n, committed, verf, err := decodeWrite(writeOK(5, writeUnstable)); err != nil || n != 5 || committed != writeUnstable || string(verf[:]) != "wrverf01" {
		t.Errorf("WRITE: %d %d %q %v", n, committed, verf, err)
	}
	if verf, err := decodeCommit(commitOK()); err != nil || string(verf[:]) != "wrverf01" {
		t.Errorf("COMMIT: %q %v", verf, err)
	}
	if _, err := decodeCommit(wccRes(nfsc.NFS3ErrIO, 1)); !errors.Is(err, export.ErrServerReply) {
		t.Errorf("COMMIT IO: %v", err)
	}
	if target, err := decodeReadlink(readlinkOK("../target")); err != nil || target != "../target" {
		t.Errorf("READLINK: %q %v", target, err)
	}
	if r, w, err := decodeFsinfo(fsinfoOK(1<<20, 65536)); err != nil || r != 1<<20 || w != 65536 {
		t.Errorf("FSINFO: %d %d %v", r, w, err)
	}
}

func TestStatusMapping(t *testing.T) {
	cases := []struct {
		st   uint32
		want error
	}{
		{nfsc.NFS3ErrNoEnt, export.ErrNotExist},
		{nfsc.NFS3ErrExist, export.ErrExist},
		{nfsc.NFS3ErrNotEmpty, export.ErrExist},
		{nfsc.NFS3ErrAcces, export.ErrPermission},
		{nfsc.NFS3ErrPerm, export.ErrPermission},
		{nfsc.NFS3ErrROFS, export.ErrPermission},
		{nfsc.NFS3ErrNotDir, export.ErrNotDir},
		{nfsc.NFS3ErrNameTooLong, export.ErrInvalidPath},
	}
	for _, c := range cases {
		err := error(&StatusError{Status: c.st})
		if !errors.Is(err, c.want) {
			t.Errorf("%v is not %v", err, c.want)
		}
		if errors.Is(&StatusError{Status: nfsc.NFS3ErrIO}, c.want) {
			t.Errorf("NFS3ERR_IO is %v", c.want)
		}
	}
	if got := Result(&StatusError{Status: nfsc.NFS3ErrStale}); got != "NFS3ERR_STALE" {
		t.Errorf("Result = %q", got)
	}
	if got := Result(&StatusError{Mount: true, Status: 13}); got != "MNT3ERR_ACCES" {
		t.Errorf("Result = %q", got)
	}
	if got := (&StatusError{Status: 12345}).Error(); got != "NFS3ERR_12345" {
		t.Errorf("unknown status: %q", got)
	}
}
