package wire

import (
	"context"
	"fmt"
	"net"
	"sync"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	"k8s.io/klog/v2"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"
)

// session is one mounted export: the NFSv3 procedures on a connection to
// the server (nfs) and the cache of directory handles below the export
// root; its methods walk paths through the cache.
type session struct {
	server, share string
	version       Version // Version3 or Version41
	o             *Options
	nfs           nfsProcs
	cache         *dirCache
	refreshMu     sync.Mutex
	ioOnce        sync.Mutex // guards ioSize, asked once (FSINFO)
	ioSize        int
	// forgetElsewhere drops a path from the other sessions' caches of the export (the Opener's).
	forgetElsewhere func(path []string)
}

// forget drops path, which was renamed or removed, from this session's handle cache and from
// those of the export's other sessions.
func (s *session) forget(path []string) {
	s.cache.forget(path)
	if s.forgetElsewhere != nil {
		s.forgetElsewhere(path)
	}
}

// openSession opens share on server over o.Version; VersionAuto tries NFSv4.1 and then NFSv3,
// and logs which it chose. Options.Opened is told the version.
func openSession(ctx context.Context, server, share string, o *Options) (*session, error) {
	s, err := chooseVersion(ctx, server, share, o)
	if err == nil && o.Opened != nil {
		o.Opened(server, share, s.version)
	}
	return s, err
}

func chooseVersion(ctx context.Context, server, share string, o *Options) (*session, error) {
	if o.Version != VersionAuto {
		return openVersion(ctx, server, share, o, o.Version)
	}
	s, err4 := openVersion(ctx, server, share, o, Version41)
	if err4 == nil {
		klog.InfoS("NFS version chosen", "server", server, "share", share, "version", Version41)
		return s, nil
	}
	if ctx.Err() != nil {
		return nil, err4
	}
	s, err3 := openVersion(ctx, server, share, o, Version3)
	if err3 != nil {
		return nil, fmt.Errorf("%w (and over NFSv4.1: %v)", err3, err4)
	}
	klog.InfoS("NFS version chosen", "server", server, "share", share, "version", Version3, "nfs41Error", err4.Error())
	return s, nil
}

func openVersion(ctx context.Context, server, share string, o *Options, v Version) (*session, error) {
	s := &session{server: server, share: share, o: o, version: v}
	switch v {
	case Version41:
		p, err := dialNFS4(ctx, server, share, o)
		if err != nil {
			return nil, err
		}
		s.nfs = p
	default:
		s.nfs = &nfs3Client{rpc: sunrpc.NewClient(server, s.dialNFS, o.rpcConfig()), readdirBytes: o.ReaddirBytes, mount: s.mnt}
	}
	root, err := s.mountRoot(ctx)
	if err != nil {
		s.nfs.close()
		return nil, err
	}
	s.cache = newDirCache(root, o.MaxCachedDirs)
	return s, nil
}

func (s *session) close() { s.nfs.close() }

// port returns the explicit port, or asks the server's portmapper.
func (s *session) port(ctx context.Context, prog, vers uint32, explicit int) (int, error) {
	if explicit != 0 {
		return explicit, nil
	}
	pm := sunrpc.NewClient(s.server, func(ctx context.Context) (net.Conn, error) {
		return sunrpc.DialTCP(ctx, s.server, s.o.PortmapPort, sunrpc.SourcePortAny) // the portmapper does not care
	}, s.o.rpcConfig())
	defer pm.Close()
	var port int
	err := pm.Call(ctx, procGetport, nil, getportArgs(prog, vers), func(res []byte) (err error) {
		port, err = decodeGetport(res)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("portmapper on %s:%d: %w", s.server, s.o.PortmapPort, err)
	}
	if port == 0 {
		return 0, fmt.Errorf("program %d version %d over TCP is not registered with the portmapper on %s", prog, vers, s.server)
	}
	return port, nil
}

func (s *session) dialNFS(ctx context.Context) (net.Conn, error) {
	port, err := s.port(ctx, nfsc.Nfs3Prog, nfsc.Nfs3Vers, s.o.NFSPort)
	if err != nil {
		return nil, err
	}
	return sunrpc.DialTCP(ctx, s.server, port, s.o.SourcePort)
}

// mountRoot finds the export's root handle and reads the root's attributes.
func (s *session) mountRoot(ctx context.Context) (dirRef, error) {
	fh, err := s.nfs.root(ctx)
	if err != nil {
		return dirRef{}, err
	}
	a, err := s.nfs.getattr(ctx, fh, &rootCred)
	if err != nil {
		return dirRef{}, fmt.Errorf("getattr of the root of %s:%s: %w", s.server, s.share, err)
	}
	return dirRef{fh: fh, attrs: a}, nil
}

// mnt asks the MOUNT program for the export's root handle.
func (s *session) mnt(ctx context.Context) ([]byte, error) {
	port, err := s.port(ctx, nfsc.MountProg, nfsc.MountVers, s.o.MountPort)
	if err != nil {
		return nil, err
	}
	mc := sunrpc.NewClient(s.server, func(ctx context.Context) (net.Conn, error) {
		return sunrpc.DialTCP(ctx, s.server, port, s.o.SourcePort)
	}, s.o.rpcConfig())
	defer mc.Close()
	var fh []byte
	err = mc.Call(ctx, procMnt, &rootCred, mntArgs(s.share), func(res []byte) (err error) {
		fh, err = decodeMnt(res)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mount %s:%s: %w", s.server, s.share, err)
	}
	return fh, nil
}

// refresh forgets every cached handle after a stale one was met by an
// operation that began after resets resets; when the root handle itself is
// stale, the export is mounted again. Operations that met the same stale
// handles concurrently find the count already advanced and refresh nothing.
func (s *session) refresh(ctx context.Context, resets uint64) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	if s.cache.resetCount() != resets {
		return nil // refreshed since the operation began
	}
	root := s.cache.rootRef()
	a, err := s.nfs.getattr(ctx, root.fh, &rootCred)
	if err == nil {
		s.cache.reset(dirRef{fh: root.fh, attrs: a})
		return nil
	}
	if !isStale(err) {
		return err
	}
	root, err = s.mountRoot(ctx)
	if err != nil {
		return err
	}
	s.cache.reset(root)
	return nil
}

// retry runs op, and once more after a refresh when it met a stale handle.
func (s *session) retry(ctx context.Context, op func() error) error {
	resets := s.cache.resetCount()
	err := op()
	if !isStale(err) {
		return err
	}
	if rerr := s.refresh(ctx, resets); rerr != nil {
		return fmt.Errorf("%w (refreshing handles: %v)", err, rerr)
	}
	return op()
}
