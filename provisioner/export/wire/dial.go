package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// dialTCP connects to host:port, from a privileged source port (1023 down
// to 512) when privileged is set.
func dialTCP(ctx context.Context, host string, port int, privileged bool) (net.Conn, error) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]") // "[::1]" as well as "::1"
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if !privileged {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
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
			return nil, fmt.Errorf("bind a privileged source port (needs root or CAP_NET_BIND_SERVICE): %w", err)
		}
		return nil, err
	}
	return nil, fmt.Errorf("no free privileged source port: %w", lastErr)
}
