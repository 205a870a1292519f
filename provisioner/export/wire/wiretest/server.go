// Package wiretest runs an in-process NFSv3 server
// (github.com/willscott/go-nfs over a local directory) for tests and
// benchmarks of the wire backend. It serves MOUNT and NFS on one port and
// has no portmapper: give the port as both wire.Options.NFSPort and
// MountPort. It ignores AUTH_SYS credentials (it acts as the test process,
// usually root) and cannot store setuid/setgid/sticky bits.
package wiretest

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	nfs "github.com/willscott/go-nfs"
	nfshelper "github.com/willscott/go-nfs/helpers"
)

// Server is a running in-process NFS server.
type Server struct {
	Host string // "127.0.0.1"
	Port int    // MOUNT and NFS
	Dir  string // the exported directory
	Path string // the export path to mount ("/")

	handleLimit int

	mu      sync.Mutex
	l       *trackingListener // nil while stopped
	done    chan error
	stopErr error
}

// DefaultHandleLimit is how many file handles the server remembers; older
// ones become stale (NFS3ERR_STALE).
const DefaultHandleLimit = 1 << 20

// Start serves dir (a new temporary directory when "") on 127.0.0.1 and
// stops the server when the test ends.
func Start(tb testing.TB, dir string) *Server {
	tb.Helper()
	return StartLimited(tb, dir, DefaultHandleLimit)
}

// StartLimited is Start with a server that remembers only handleLimit file
// handles, so that tests can make handles go stale.
func StartLimited(tb testing.TB, dir string, handleLimit int) *Server {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	s, err := Listen(dir, handleLimit)
	if err != nil {
		tb.Fatalf("in-process NFS server: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("in-process NFS server: %v", err)
		}
	})
	return s
}

func init() {
	nfs.Log.SetLevel(nfs.PanicLevel) // it logs every ENOENT of a stat
}

// Listen starts a server for dir on 127.0.0.1:0; Close stops it.
func Listen(dir string, handleLimit int) (*Server, error) {
	s := &Server{Host: "127.0.0.1", Dir: dir, Path: "/", handleLimit: handleLimit}
	if err := s.serve("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) serve(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	tl := &trackingListener{Listener: l}
	// A new handler each time: a restarted server has forgotten every
	// handle it gave out, like a server whose handles are volatile.
	handler := nfshelper.NewNullAuthHandler(changeFS{osfs.New(s.Dir)})
	done := make(chan error, 1)
	s.mu.Lock()
	s.Port = l.Addr().(*net.TCPAddr).Port
	s.l, s.done = tl, done
	s.mu.Unlock()
	go func() { done <- nfs.Serve(tl, nfshelper.NewCachingHandler(handler, s.handleLimit)) }()
	return nil
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Close stops the server as if it were killed: the listener and every
// connection are closed. It may be called more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	tl, done := s.l, s.done
	s.l = nil
	s.mu.Unlock()
	if tl == nil {
		return s.stopErr
	}
	tl.Close()
	tl.closeConns()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			s.stopErr = err
		}
	case <-time.After(10 * time.Second):
		s.stopErr = errors.New("accept loop did not stop")
	}
	return s.stopErr
}

// Restart stops the server (when running) and starts it again on the same
// port. Handles given out before are stale afterwards.
func (s *Server) Restart() error {
	if err := s.Close(); err != nil {
		return err
	}
	return s.serve(s.Addr())
}

// trackingListener remembers accepted connections so Close can cut them.
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed { // accepted while the server was being stopped
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns = append(l.conns, c)
	return c, nil
}

func (l *trackingListener) closeConns() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// Populate writes a file below the exported directory, bypassing NFS.
func (s *Server) Populate(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(s.Dir, filepath.FromSlash(path)), data, 0o644); err != nil {
		tb.Fatalf("populate %s: %v", path, err)
	}
}

// changeFS adds billy.Change (chmod, chown, chtimes) to an osfs, which
// go-nfs needs to apply SETATTR and the attributes of MKDIR.
type changeFS struct{ billy.Filesystem }

func (fs changeFS) path(name string) string { return filepath.Join(fs.Root(), name) }

func (fs changeFS) Chmod(name string, mode os.FileMode) error { return os.Chmod(fs.path(name), mode) }
func (fs changeFS) Lchown(name string, uid, gid int) error    { return os.Lchown(fs.path(name), uid, gid) }
func (fs changeFS) Chown(name string, uid, gid int) error     { return os.Chown(fs.path(name), uid, gid) }
func (fs changeFS) Chtimes(name string, atime, mtime time.Time) error {
	return os.Chtimes(fs.path(name), atime, mtime)
}
