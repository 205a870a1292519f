package wire

import (
	"fmt"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
)

// MOUNT v3 (RFC 1813 appendix I) and portmapper v2 GETPORT (RFC 1833).

var (
	procMnt     = procedure{Prog: nfsc.MountProg, Vers: nfsc.MountVers, Proc: nfsc.MountProc3MNT, Name: "MNT"}
	procGetport = procedure{Prog: rpc.PmapProg, Vers: rpc.PmapVers, Proc: rpc.PmapProcGetPort, Name: "GETPORT"}
)

const maxAuthFlavors = 64

func mntArgs(path string) func(*encoder) {
	return func(e *encoder) { e.String(path) }
}

// decodeMnt decodes mountres3 and returns the root file handle.
func decodeMnt(res []byte) (fh []byte, err error) {
	defer sunrpc.RecoverTo(&err, "MNT")
	d := decoder{B: res}
	st := d.Uint32()
	if d.Err == nil && st != nfsc.MNT3Ok {
		return nil, &StatusError{Mount: true, Status: st}
	}
	fh = nfsFH(&d)
	n := d.Uint32()
	if d.Err == nil && n > maxAuthFlavors {
		d.Fail(fmt.Errorf("%d auth flavors", n))
	}
	d.Skip(int(n) * 4)
	if d.Err != nil {
		return nil, fmt.Errorf("%w: MNT reply: %v", sunrpc.ErrProtocol, d.Err)
	}
	return fh, nil
}

func getportArgs(prog, vers uint32) func(*encoder) {
	return func(e *encoder) {
		e.Uint32(prog)
		e.Uint32(vers)
		e.Uint32(rpc.IPProtoTCP)
		e.Uint32(0)
	}
}

// decodeGetport decodes the port; 0 means the program is not registered.
func decodeGetport(res []byte) (port int, err error) {
	defer sunrpc.RecoverTo(&err, "GETPORT")
	d := decoder{B: res}
	p := d.Uint32()
	if d.Err != nil {
		return 0, fmt.Errorf("%w: GETPORT reply: %v", sunrpc.ErrProtocol, d.Err)
	}
	if p > 65535 {
		return 0, fmt.Errorf("%w: GETPORT returned port %d", sunrpc.ErrProtocol, p)
	}
	return int(p), nil
}
