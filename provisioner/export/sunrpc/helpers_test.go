package sunrpc

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc/rpctest"
)

// clientOf returns a client of the test server with the given call timeout.
func clientOf(t *testing.T, s *rpctest.Server, timeout time.Duration) *Client {
	t.Helper()
	port := s.Port()
	c := NewClient("fake", func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}, Config{Timeout: timeout, MachineName: "test", MaxRecord: 1 << 20})
	t.Cleanup(c.Close)
	return c
}

// callProc makes a call of procedure proc (any program) and returns the first result word.
func callProc(ctx context.Context, c *Client, proc uint32) (uint32, error) {
	p := Procedure{Prog: 100003, Vers: 3, Proc: proc, Name: "TEST"}
	var v uint32
	err := c.Call(ctx, p, &RootCred, nil, func(res []byte) error {
		d := Decoder{B: res}
		v = d.Uint32()
		if d.Err != nil {
			return fmt.Errorf("%w: %v", ErrProtocol, d.Err)
		}
		return nil
	})
	return v, err
}

func mustEcho(t *testing.T, c *Client, proc uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := callProc(ctx, c, proc)
	if err != nil {
		t.Fatalf("call %d: %v", proc, err)
	}
	if got != proc {
		t.Fatalf("call %d answered %d", proc, got)
	}
}
