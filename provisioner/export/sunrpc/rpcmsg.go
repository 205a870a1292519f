package sunrpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
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

	MaxAuthBytes = 400 // RFC 5531: opaque_auth body is at most 400 bytes
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

// Cred is an AUTH_SYS credential (RFC 5531 appendix A).
type Cred struct {
	UID, GID uint32
	GIDs     []uint32 // at most 16
}

// RootCred is uid 0, gid 0.
var RootCred = Cred{}

const maxAuxGIDs = 16

// AppendCall writes the call header for xid into e.
func AppendCall(e *Encoder, xid, prog, vers, proc uint32, c *Cred, machine string) {
	e.Uint32(xid)
	e.Uint32(msgCall)
	e.Uint32(rpcVersion)
	e.Uint32(prog)
	e.Uint32(vers)
	e.Uint32(proc)
	if c == nil {
		e.Uint32(authNone)
		e.Uint32(0)
	} else {
		e.Uint32(authSys)
		lenAt := len(e.B)
		e.Uint32(0) // body length, patched below
		start := len(e.B)
		e.Uint32(0) // stamp
		e.String(machine)
		e.Uint32(c.UID)
		e.Uint32(c.GID)
		gids := c.GIDs
		if len(gids) > maxAuxGIDs {
			gids = gids[:maxAuxGIDs]
		}
		e.Uint32(uint32(len(gids)))
		for _, g := range gids {
			e.Uint32(g)
		}
		n := uint32(len(e.B) - start)
		e.B[lenAt], e.B[lenAt+1], e.B[lenAt+2], e.B[lenAt+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	}
	e.Uint32(authNone) // verifier
	e.Uint32(0)
}

// DecodeReply checks the reply header of a complete RPC record and returns
// the Procedure's results. xid is what the caller expects.
func DecodeReply(rec []byte, xid uint32) (res []byte, err error) {
	defer RecoverTo(&err, "rpc reply")
	d := Decoder{B: rec}
	gotXID := d.Uint32()
	mtype := d.Uint32()
	stat := d.Uint32()
	if d.Err != nil {
		return nil, fmt.Errorf("%w: reply header: %v", ErrProtocol, d.Err)
	}
	if gotXID != xid {
		return nil, fmt.Errorf("%w: reply xid %#x, want %#x", ErrProtocol, gotXID, xid)
	}
	if mtype != msgReply {
		return nil, fmt.Errorf("%w: message type %d, want REPLY", ErrProtocol, mtype)
	}
	switch stat {
	case replyAccepted:
		d.Uint32() // verifier flavor
		d.Opaque(MaxAuthBytes)
		astat := d.Uint32()
		if d.Err != nil {
			return nil, fmt.Errorf("%w: accepted reply: %v", ErrProtocol, d.Err)
		}
		switch astat {
		case acceptSuccess:
			return d.B, nil
		case acceptProgMismatch:
			lo, hi := d.Uint32(), d.Uint32()
			if d.Err != nil {
				return nil, fmt.Errorf("%w: PROG_MISMATCH: %v", ErrProtocol, d.Err)
			}
			return nil, &RPCError{Stat: astat, Low: lo, High: hi}
		case acceptProgUnavail, acceptProcUnavail, acceptGarbageArgs, acceptSystemErr:
			return nil, &RPCError{Stat: astat}
		}
		return nil, fmt.Errorf("%w: unknown accept_stat %d", ErrProtocol, astat)
	case replyDenied:
		rstat := d.Uint32()
		e := &RPCError{Denied: true, Stat: rstat}
		switch rstat {
		case rejectRPCMismatch:
			e.Low, e.High = d.Uint32(), d.Uint32()
		case rejectAuthError:
			e.Auth = d.Uint32()
		default:
			return nil, fmt.Errorf("%w: unknown reject_stat %d", ErrProtocol, rstat)
		}
		if d.Err != nil {
			return nil, fmt.Errorf("%w: denied reply: %v", ErrProtocol, d.Err)
		}
		return nil, e
	}
	return nil, fmt.Errorf("%w: unknown reply_stat %d", ErrProtocol, stat)
}

// RecoverTo is the last line of defence of every decoder: a panic (which
// the bounds-checked decoder should make impossible) becomes an error.
func RecoverTo(err *error, what string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: decoding %s: panic: %v", ErrProtocol, what, r)
	}
}

// Result classifies a transport-level err for a metrics label: "ok", "timeout", "canceled",
// "rpc" (denied or not accepted), "protocol" (malformed reply), "connection" or "error".
// Protocols above classify their own statuses first.
func Result(err error) string {
	var re *RPCError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &re):
		return "rpc"
	case errors.Is(err, ErrProtocol):
		return "protocol"
	case errors.Is(err, ErrConnection):
		return "connection"
	}
	return "error"
}

// Is makes every RPC-level reply an answer of the server.
func (e *RPCError) Is(target error) bool { return target == export.ErrServerReply }
