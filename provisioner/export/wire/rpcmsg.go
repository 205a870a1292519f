package wire

import (
	"errors"
	"fmt"
)

// ONC RPC v2 messages (RFC 5531): the call header this client writes and
// the reply header it checks before handing the results to a decoder.

const (
	rpcVersion = 2

	msgCall  = 0
	msgReply = 1

	replyAccepted = 0
	replyDenied   = 1

	acceptSuccess      = 0
	acceptProgUnavail  = 1
	acceptProgMismatch = 2
	acceptProcUnavail  = 3
	acceptGarbageArgs  = 4
	acceptSystemErr    = 5

	rejectRPCMismatch = 0
	rejectAuthError   = 1

	authNone = 0
	authSys  = 1

	maxAuthBytes = 400 // RFC 5531: opaque_auth body is at most 400 bytes
)

// ErrProtocol is wrapped by every error caused by a reply that does not
// follow the protocol (truncated, malformed, unexpected values).
var ErrProtocol = errors.New("rpc protocol error")

// RPCError is a well-formed RPC reply that is not a success: the call was
// denied (RPC_MISMATCH, AUTH_ERROR) or not accepted (PROG_UNAVAIL,
// PROG_MISMATCH, PROC_UNAVAIL, GARBAGE_ARGS, SYSTEM_ERR).
type RPCError struct {
	Denied bool   // MSG_DENIED rather than MSG_ACCEPTED
	Stat   uint32 // reject_stat when Denied, else accept_stat
	Auth   uint32 // auth_stat for AUTH_ERROR
	Low    uint32 // supported versions for the mismatch errors
	High   uint32
}

func (e *RPCError) Error() string {
	if e.Denied {
		switch e.Stat {
		case rejectRPCMismatch:
			return fmt.Sprintf("rpc: MSG_DENIED RPC_MISMATCH (server supports %d-%d)", e.Low, e.High)
		case rejectAuthError:
			return fmt.Sprintf("rpc: MSG_DENIED AUTH_ERROR (auth_stat %d)", e.Auth)
		}
		return fmt.Sprintf("rpc: MSG_DENIED reject_stat %d", e.Stat)
	}
	switch e.Stat {
	case acceptProgUnavail:
		return "rpc: PROG_UNAVAIL"
	case acceptProgMismatch:
		return fmt.Sprintf("rpc: PROG_MISMATCH (server supports %d-%d)", e.Low, e.High)
	case acceptProcUnavail:
		return "rpc: PROC_UNAVAIL"
	case acceptGarbageArgs:
		return "rpc: GARBAGE_ARGS"
	case acceptSystemErr:
		return "rpc: SYSTEM_ERR"
	}
	return fmt.Sprintf("rpc: accept_stat %d", e.Stat)
}

// cred is an AUTH_SYS credential (RFC 5531 appendix A).
type cred struct {
	uid, gid uint32
	gids     []uint32 // at most 16
}

var rootCred = cred{}

const maxAuxGIDs = 16

// appendCall writes the call header for xid into e.
func appendCall(e *encoder, xid, prog, vers, proc uint32, c *cred, machine string) {
	e.uint32(xid)
	e.uint32(msgCall)
	e.uint32(rpcVersion)
	e.uint32(prog)
	e.uint32(vers)
	e.uint32(proc)
	if c == nil {
		e.uint32(authNone)
		e.uint32(0)
	} else {
		e.uint32(authSys)
		lenAt := len(e.b)
		e.uint32(0) // body length, patched below
		start := len(e.b)
		e.uint32(0) // stamp
		e.string(machine)
		e.uint32(c.uid)
		e.uint32(c.gid)
		gids := c.gids
		if len(gids) > maxAuxGIDs {
			gids = gids[:maxAuxGIDs]
		}
		e.uint32(uint32(len(gids)))
		for _, g := range gids {
			e.uint32(g)
		}
		n := uint32(len(e.b) - start)
		e.b[lenAt], e.b[lenAt+1], e.b[lenAt+2], e.b[lenAt+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	}
	e.uint32(authNone) // verifier
	e.uint32(0)
}

// decodeReply checks the reply header of a complete RPC record and returns
// the procedure's results. xid is what the caller expects.
func decodeReply(rec []byte, xid uint32) (res []byte, err error) {
	defer recoverTo(&err, "rpc reply")
	d := decoder{b: rec}
	gotXID := d.uint32()
	mtype := d.uint32()
	stat := d.uint32()
	if d.err != nil {
		return nil, fmt.Errorf("%w: reply header: %v", ErrProtocol, d.err)
	}
	if gotXID != xid {
		return nil, fmt.Errorf("%w: reply xid %#x, want %#x", ErrProtocol, gotXID, xid)
	}
	if mtype != msgReply {
		return nil, fmt.Errorf("%w: message type %d, want REPLY", ErrProtocol, mtype)
	}
	switch stat {
	case replyAccepted:
		d.uint32() // verifier flavor
		d.opaque(maxAuthBytes)
		astat := d.uint32()
		if d.err != nil {
			return nil, fmt.Errorf("%w: accepted reply: %v", ErrProtocol, d.err)
		}
		switch astat {
		case acceptSuccess:
			return d.b, nil
		case acceptProgMismatch:
			lo, hi := d.uint32(), d.uint32()
			if d.err != nil {
				return nil, fmt.Errorf("%w: PROG_MISMATCH: %v", ErrProtocol, d.err)
			}
			return nil, &RPCError{Stat: astat, Low: lo, High: hi}
		case acceptProgUnavail, acceptProcUnavail, acceptGarbageArgs, acceptSystemErr:
			return nil, &RPCError{Stat: astat}
		}
		return nil, fmt.Errorf("%w: unknown accept_stat %d", ErrProtocol, astat)
	case replyDenied:
		rstat := d.uint32()
		e := &RPCError{Denied: true, Stat: rstat}
		switch rstat {
		case rejectRPCMismatch:
			e.Low, e.High = d.uint32(), d.uint32()
		case rejectAuthError:
			e.Auth = d.uint32()
		default:
			return nil, fmt.Errorf("%w: unknown reject_stat %d", ErrProtocol, rstat)
		}
		if d.err != nil {
			return nil, fmt.Errorf("%w: denied reply: %v", ErrProtocol, d.err)
		}
		return nil, e
	}
	return nil, fmt.Errorf("%w: unknown reply_stat %d", ErrProtocol, stat)
}

// recoverTo is the last line of defence of every decoder: a panic (which
// the bounds-checked decoder should make impossible) becomes an error.
func recoverTo(err *error, what string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: decoding %s: panic: %v", ErrProtocol, what, r)
	}
}
