package sunrpc

import (
	"context"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestDialIPv6Literal(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, host := range []string{"::1", "[::1]"} {
		nc, err := DialTCP(ctx, host, port, SourcePortAny)
		if err != nil {
			t.Errorf("dial %s: %v", host, err)
			continue
		}
		nc.Close()
	}
}

// Only bind's refusal means "no reserved ports for this process"; connect's EPERM (a firewall
// rule on one destination) does not, or one blocked server would switch every later connection
// to ephemeral ports.
func TestBindDeniedIsBindsOnly(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}, true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EPERM)}, true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EPERM)}, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EACCES)}, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}, false},
	}
	for _, c := range cases {
		if got := bindDenied(c.err); got != c.want {
			t.Errorf("bindDenied(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
