package wire

import (
	"fmt"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
)

// MOUNT v3 (RFC 1813 appendix I) and portmapper v2 GETPORT (RFC 1833).

var (
	procMnt     = procedure{prog: nfsc.MountProg, vers: nfsc.MountVers, proc: nfsc.MountProc3MNT, name: "MNT"}
	procGetport = procedure{prog: rpc.PmapProg, vers: rpc.PmapVers, proc: rpc.PmapProcGetPort, name: "GETPORT"}
)

const maxAuthFlavors = 64

func mntArgs(path string) func(*encoder) {
	return func(e *encoder) { e.string(path) }
}

// decodeMnt decodes mountres3 and returns the root file handle.
func decodeMnt(res []byte) (fh []byte, err error) {
	defer recoverTo(&err, "MNT")
	d := decoder{b: res}
	st := d.uint32()
	if d.err == nil && st != nfsc.MNT3Ok {
		return nil, &StatusError{Mount: true, Status: st}
	}
	fh = d.fh()
	n := d.uint32()
	if d.err == nil && n > maxAuthFlavors {
		d.fail(fmt.Errorf("%d auth flavors", n))
	}
	d.skip(int(n) * 4)
	if d.err != nil {
		return nil, fmt.Errorf("%w: MNT reply: %v", ErrProtocol, d.err)
	}
	return fh, nil
}

func getportArgs(prog, vers uint32) func(*encoder) {
	return func(e *encoder) {
		e.uint32(prog)
		e.uint32(vers)
		e.uint32(rpc.IPProtoTCP)
		e.uint32(0)
	}
}

// decodeGetport decodes the port; 0 means the program is not registered.
func decodeGetport(res []byte) (port int, err error) {
	defer recoverTo(&err, "GETPORT")
	d := decoder{b: res}
	p := d.uint32()
	if d.err != nil {
		return 0, fmt.Errorf("%w: GETPORT reply: %v", ErrProtocol, d.err)
	}
	if p > 65535 {
		return 0, fmt.Errorf("%w: GETPORT returned port %d", ErrProtocol, p)
	}
	return int(p), nil
}
