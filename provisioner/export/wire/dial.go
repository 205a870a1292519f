package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// SourcePort says which client port a connection to the server comes from. Servers exporting with
// "secure" (Linux knfsd's default) answer only clients on a reserved port (below 1024); every
// server answers those.
type SourcePort int

const (
	// SourcePortAuto binds a reserved port when this process may (root, CAP_NET_BIND_SERVICE, or a
	// runtime that sets net.ipv4.ip_unprivileged_port_start=0, as containerd 2 and Docker do),
	// and any port when it may not or all reserved ports are taken.
	SourcePortAuto SourcePort = iota
	// SourcePortReserved binds a reserved port or fails.
	SourcePortReserved
	// SourcePortAny lets the kernel choose (an ephemeral port above 1023).
	SourcePortAny
)

func (p SourcePort) String() string {
	switch p {
	case SourcePortReserved:
		return "true"
	case SourcePortAny:
		return "false"
	}
	return "auto"
}

// ParseSourcePort reads "auto", "true" (reserved) or "false" (any).
func ParseSourcePort(s string) (SourcePort, error) {
	switch strings.ToLower(s) {
	case "auto", "":
		return SourcePortAuto, nil
	case "true", "1", "yes":
		return SourcePortReserved, nil
	case "false", "0", "no":
		return SourcePortAny, nil
	}
	return 0, fmt.Errorf("%q: want auto, true or false", s)
}

// errNoReservedPort says that no reserved source port could be bound: not permitted, or all taken.
var errNoReservedPort = errors.New("no reserved source port")

// reservedDenied remembers that this process may not bind reserved ports (its capabilities do
// not change while it runs), so that SourcePortAuto stops trying.
var reservedDenied atomic.Bool

// dialTCP connects to host:port from the source port source asks for.
func dialTCP(ctx context.Context, host string, port int, source SourcePort) (net.Conn, error) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]") // "[::1]" as well as "::1"
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if source == SourcePortAny || (source == SourcePortAuto && reservedDenied.Load()) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	nc, err := dialReserved(ctx, addr)
	if source == SourcePortAuto && errors.Is(err, errNoReservedPort) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	return nc, err
}

// dialReserved connects from a reserved port, 1023 down to 512.
func dialReserved(ctx context.Context, addr string) (net.Conn, error) {
	var lastErr error
	for p := 1023; p >= 512; p-- {
		d := net.Dialer{
			LocalAddr: &net.TCPAddr{Port: p},
			Control:   reuseAddr,
		}
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return nc, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EADDRNOTAVAIL) {
			continue
		}
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			reservedDenied.Store(true)
			return nil, fmt.Errorf("%w: binding one needs root or CAP_NET_BIND_SERVICE: %w", errNoReservedPort, err)
		}
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, lastErr
	}
	return nil, fmt.Errorf("%w: all are in use: %w", errNoReservedPort, lastErr)
}
