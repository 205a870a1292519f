//go:build !unix

package sunrpc

import "syscall"

func reuseAddr(_, _ string, _ syscall.RawConn) error { return nil }
