//go:build !unix

package wire

import "syscall"

func reuseAddr(_, _ string, _ syscall.RawConn) error { return nil }
