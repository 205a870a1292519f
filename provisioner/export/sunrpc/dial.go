package sunrpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"k8s.io/klog/v2"
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

// DialTCP connects to host:port from the source port source asks for.
func DialTCP(ctx context.Context, host string, port int, source SourcePort) (net.Conn, error) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]") // "[::1]" as well as "::1"
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if source == SourcePortAny || (source == SourcePortAuto && reservedDenied.Load()) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	nc, err := dialReserved(ctx, host, port)
	if source == SourcePortAuto && errors.Is(err, errNoReservedPort) {
		if !errors.Is(err, errDenied) {
			klog.V(2).InfoS("no reserved source port free; connecting from an ephemeral one (a server exporting with 'secure' refuses it)", "server", host, "port", port)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	return nc, err
}

// errDenied says that binding a reserved port is not permitted to this process.
var errDenied = errors.New("binding a reserved port is not permitted")

// nextReserved spreads the reserved ports the dials start from, so that one destination's ports
// in TIME_WAIT do not make every dial walk past them.
var nextReserved atomic.Uint32

// dialReserved connects from a reserved port (1023 down to 512, starting at a rotating one).
// The name is resolved once, not once per port tried.
func dialReserved(ctx context.Context, host string, port int) (net.Conn, error) {
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%s has no address", host)
	}
	addr := net.JoinHostPort(ips[0].Unmap().String(), strconv.Itoa(port))
	const first, count = 512, 512
	start := int(nextReserved.Add(1))
	var lastErr error
	for i := range count {
		p := first + (start+i)%count
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
			return nil, err
		}
		if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EADDRNOTAVAIL) {
			continue
		}
		if bindDenied(err) {
			reservedDenied.Store(true)
			return nil, fmt.Errorf("%w: %w: it needs root, CAP_NET_BIND_SERVICE or net.ipv4.ip_unprivileged_port_start=0: %w", errNoReservedPort, errDenied, err)
		}
		return nil, err
	}
	return nil, fmt.Errorf("%w: all are in use: %w", errNoReservedPort, lastErr)
}

// bindDenied reports whether err is bind refusing a reserved port. Only bind says whether this
// process may use one: an EPERM or EACCES of connect (a local firewall rule, a full conntrack
// table, a BPF hook) is about the destination, and must not switch every later connection to
// ephemeral ports.
func bindDenied(err error) bool {
	var se *os.SyscallError
	return errors.As(err, &se) && se.Syscall == "bind" && (errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM))
}
