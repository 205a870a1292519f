package wire

import (
	"context"
	"encoding/binary"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc/rpctest"
	nfsc "github.com/willscott/go-nfs-client/nfs"
)

// inodeServer is an in-memory NFSv3 server whose file handles name inodes,
// not paths: a handle follows its directory through a rename, as on the
// Linux kernel server and Ganesha (go-nfs's handles are paths, so it cannot
// show what this one shows). It serves MOUNT and NFS on one port, and the
// test can hold back the reply to a call it picks.
type inodeServer struct {
	*rpctest.Server
	mu    sync.Mutex
	nodes map[uint64]*inode
	next  uint64
	// hold, when it returns a channel for a call, delays that call's reply
	// (the call is executed at once) until the channel is closed.
	hold func(proc uint32, name string) chan struct{}
	// mkdirMode mimics mkdir(2): the mode MKDIR gives a new directory.
	mkdirMode func(asked uint32) uint32
}

type inode struct {
	dir      bool
	mode     uint32
	uid, gid uint32
	children map[string]uint64
	parent   uint64
}

func newInodeServer(t *testing.T) *inodeServer {
	s := &inodeServer{nodes: map[uint64]*inode{1: {dir: true, mode: 0o777, children: map[string]uint64{}}}, next: 2}
	s.mkdirMode = func(m uint32) uint32 { return m }
	s.Server = rpctest.NewServer(t, s.serve)
	return s
}

// open mounts the server's export with a fresh session.
func (s *inodeServer) open(t *testing.T) *FS {
	t.Helper()
	o := Options{NFSPort: s.Port(), MountPort: s.Port(), Timeout: 5 * time.Second}.withDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sess, err := openSession(ctx, "127.0.0.1", "/export", &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.close)
	return &FS{s: sess}
}

// mkdir makes a directory at the path of names, as a user would.
func (s *inodeServer) mkdir(names ...string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := uint64(1)
	for _, n := range names {
		next, ok := s.nodes[id].children[n]
		if !ok {
			next = s.next
			s.next++
			s.nodes[next] = &inode{dir: true, mode: 0o755, children: map[string]uint64{}, parent: id}
			s.nodes[id].children[n] = next
		}
		id = next
	}
	return id
}

// at returns the inode at the path of names, or nil.
func (s *inodeServer) at(names ...string) *inode {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[1]
	for _, name := range names {
		id, ok := n.children[name]
		if !ok {
			return nil
		}
		n = s.nodes[id]
	}
	return n
}

func (s *inodeServer) serve(fc *rpctest.Conn) {
	var wmu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		call, err := fc.ReadCall()
		if err != nil {
			return
		}
		res, name := s.execute(call)
		var wait chan struct{}
		if s.hold != nil {
			wait = s.hold(call.Proc, name)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if wait != nil {
				<-wait
			}
			rec := append(rpctest.Reply(call.XID), res...)
			wmu.Lock()
			fc.Send(rec)
			wmu.Unlock()
		}()
	}
}

func fhOf(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

func (s *inodeServer) fattr(e *encoder, id uint64) {
	n := s.nodes[id]
	typ := uint32(nfsc.NF3Reg)
	if n.dir {
		typ = nf3Dir
	}
	for _, w := range []uint32{typ, n.mode, 2, n.uid, n.gid} {
		e.Uint32(w)
	}
	for i := 0; i < 8; i++ { // size, used, rdev, fsid, fileid, atime, mtime, ctime
		if i == 4 {
			e.Uint64(id)
		} else {
			e.Uint64(0)
		}
	}
}

// execute runs one call and returns its results and the name it is about.
func (s *inodeServer) execute(call rpctest.Call) ([]byte, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := decoder{B: call.Args}
	e := &encoder{}
	if call.Prog == nfsc.MountProg {
		if call.Proc == procMnt.Proc {
			e.Uint32(0)
			e.Opaque(fhOf(1))
			e.Uint32(1)
			e.Uint32(1) // AUTH_SYS
		}
		return e.B, ""
	}
	node := func() (uint64, *inode) {
		id := binary.BigEndian.Uint64(append(d.Opaque(fhSize), make([]byte, 8)...)[:8])
		return id, s.nodes[id]
	}
	status := func(st uint32, wccs int) ([]byte, string) {
		e.Uint32(st)
		for i := 0; i < wccs; i++ {
			e.Bool(false)
			e.Bool(false)
		}
		return e.B, ""
	}
	switch call.Proc {
	case procNull.Proc:
		return nil, ""
	case procGetattr.Proc:
		id, n := node()
		if n == nil {
			return status(nfsc.NFS3ErrStale, 0)
		}
		e.Uint32(0)
		s.fattr(e, id)
		return e.B, ""
	case procSetattr.Proc:
		_, n := node()
		if n == nil {
			return status(nfsc.NFS3ErrStale, 1)
		}
		if d.Bool() {
			n.mode = d.Uint32() & 0o7777
		}
		if d.Bool() {
			n.uid = d.Uint32()
		}
		if d.Bool() {
			n.gid = d.Uint32()
		}
		return status(0, 1)
	case procLookup.Proc:
		_, dir := node()
		name := string(d.Opaque(maxNameSize))
		if dir == nil {
			return status(nfsc.NFS3ErrStale, 0)
		}
		id, ok := dir.children[name]
		if !ok {
			e.Uint32(nfsc.NFS3ErrNoEnt)
			e.Bool(false)
			return e.B, name
		}
		e.Uint32(0)
		e.Opaque(fhOf(id))
		e.Bool(true)
		s.fattr(e, id)
		e.Bool(false)
		return e.B, name
	case procMkdir.Proc:
		pid, dir := node()
		name := string(d.Opaque(maxNameSize))
		if dir == nil {
			return status(nfsc.NFS3ErrStale, 1)
		}
		if _, ok := dir.children[name]; ok {
			b, _ := status(nfsc.NFS3ErrExist, 1)
			return b, name
		}
		n := &inode{dir: true, children: map[string]uint64{}, parent: pid}
		if d.Bool() {
			n.mode = s.mkdirMode(d.Uint32() & 0o7777)
		}
		if d.Bool() {
			n.uid = d.Uint32()
		}
		if d.Bool() {
			n.gid = d.Uint32()
		}
		id := s.next
		s.next++
		s.nodes[id] = n
		dir.children[name] = id
		e.Uint32(0)
		e.Bool(true)
		e.Opaque(fhOf(id))
		e.Bool(true)
		s.fattr(e, id)
		e.Bool(false)
		e.Bool(false)
		return e.B, name
	case procRmdir.Proc, procRemove.Proc:
		_, dir := node()
		name := string(d.Opaque(maxNameSize))
		id, ok := dir.children[name]
		if !ok {
			b, _ := status(nfsc.NFS3ErrNoEnt, 1)
			return b, name
		}
		if len(s.nodes[id].children) > 0 {
			b, _ := status(nfsc.NFS3ErrNotEmpty, 1)
			return b, name
		}
		delete(dir.children, name)
		delete(s.nodes, id)
		b, _ := status(0, 1)
		return b, name
	case procRename.Proc:
		_, from := node()
		fromName := string(d.Opaque(maxNameSize))
		toID, to := node()
		toName := string(d.Opaque(maxNameSize))
		id, ok := from.children[fromName]
		if !ok {
			b, _ := status(nfsc.NFS3ErrNoEnt, 2)
			return b, fromName
		}
		if _, taken := to.children[toName]; taken {
			b, _ := status(nfsc.NFS3ErrExist, 2)
			return b, fromName
		}
		delete(from.children, fromName)
		to.children[toName] = id
		s.nodes[id].parent = toID
		b, _ := status(0, 2)
		return b, fromName
	case procReaddirplus.Proc:
		_, dir := node()
		cookie := d.Uint64()
		e.Uint32(0)
		e.Bool(false)
		e.Fixed(make([]byte, 8))
		names := make([]string, 0, len(dir.children))
		for n := range dir.children {
			names = append(names, n)
		}
		sort.Strings(names)
		for i, n := range names {
			if uint64(i) < cookie {
				continue
			}
			e.Bool(true)
			e.Uint64(dir.children[n])
			e.String(n)
			e.Uint64(uint64(i + 1))
			e.Bool(true)
			s.fattr(e, dir.children[n])
			e.Bool(true)
			e.Opaque(fhOf(dir.children[n]))
		}
		e.Bool(false)
		e.Bool(true)
		return e.B, ""
	}
	return status(nfsc.NFS3ErrNotSupp, 0)
}
