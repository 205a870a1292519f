package wire

import (
	"context"
	"encoding/binary"
	"sort"
	"sync"
	"testing"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
)

// inodeServer is an in-memory NFSv3 server whose file handles name inodes,
// not paths: a handle follows its directory through a rename, as on the
// Linux kernel server and Ganesha (go-nfs's handles are paths, so it cannot
// show what this one shows). It serves MOUNT and NFS on one port, and the
// test can hold back the reply to a call it picks.
type inodeServer struct {
	*fakeServer
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
	s.fakeServer = newFakeServer(t, s.serve)
	return s
}

// open mounts the server's export with a fresh session.
func (s *inodeServer) open(t *testing.T) *FS {
	t.Helper()
	o := Options{NFSPort: s.port(), MountPort: s.port(), Timeout: 5 * time.Second}.withDefaults()
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

func (s *inodeServer) serve(fc *fakeConn) {
	var wmu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		call, err := fc.readCall()
		if err != nil {
			return
		}
		res, name := s.execute(call)
		var wait chan struct{}
		if s.hold != nil {
			wait = s.hold(call.proc, name)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if wait != nil {
				<-wait
			}
			rec := append(reply(call.xid), res...)
			wmu.Lock()
			fc.send(rec)
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
		e.uint32(w)
	}
	for i := 0; i < 8; i++ { // size, used, rdev, fsid, fileid, atime, mtime, ctime
		if i == 4 {
			e.uint64(id)
		} else {
			e.uint64(0)
		}
	}
}

// execute runs one call and returns its results and the name it is about.
func (s *inodeServer) execute(call fakeCall) ([]byte, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := decoder{b: call.args}
	e := &encoder{}
	if call.prog == nfsc.MountProg {
		if call.proc == procMnt.proc {
			e.uint32(0)
			e.opaque(fhOf(1))
			e.uint32(1)
			e.uint32(1) // AUTH_SYS
		}
		return e.b, ""
	}
	node := func() (uint64, *inode) {
		id := binary.BigEndian.Uint64(append(d.opaque(fhSize), make([]byte, 8)...)[:8])
		return id, s.nodes[id]
	}
	status := func(st uint32, wccs int) ([]byte, string) {
		e.uint32(st)
		for i := 0; i < wccs; i++ {
			e.bool(false)
			e.bool(false)
		}
		return e.b, ""
	}
	switch call.proc {
	case procNull.proc:
		return nil, ""
	case procGetattr.proc:
		id, n := node()
		if n == nil {
			return status(nfsc.NFS3ErrStale, 0)
		}
		e.uint32(0)
		s.fattr(e, id)
		return e.b, ""
	case procSetattr.proc:
		_, n := node()
		if n == nil {
			return status(nfsc.NFS3ErrStale, 1)
		}
		if d.bool() {
			n.mode = d.uint32() & 0o7777
		}
		if d.bool() {
			n.uid = d.uint32()
		}
		if d.bool() {
			n.gid = d.uint32()
		}
		return status(0, 1)
	case procLookup.proc:
		_, dir := node()
		name := string(d.opaque(maxNameSize))
		if dir == nil {
			return status(nfsc.NFS3ErrStale, 0)
		}
		id, ok := dir.children[name]
		if !ok {
			e.uint32(nfsc.NFS3ErrNoEnt)
			e.bool(false)
			return e.b, name
		}
		e.uint32(0)
		e.opaque(fhOf(id))
		e.bool(true)
		s.fattr(e, id)
		e.bool(false)
		return e.b, name
	case procMkdir.proc:
		pid, dir := node()
		name := string(d.opaque(maxNameSize))
		if dir == nil {
			return status(nfsc.NFS3ErrStale, 1)
		}
		if _, ok := dir.children[name]; ok {
			b, _ := status(nfsc.NFS3ErrExist, 1)
			return b, name
		}
		n := &inode{dir: true, children: map[string]uint64{}, parent: pid}
		if d.bool() {
			n.mode = s.mkdirMode(d.uint32() & 0o7777)
		}
		if d.bool() {
			n.uid = d.uint32()
		}
		if d.bool() {
			n.gid = d.uint32()
		}
		id := s.next
		s.next++
		s.nodes[id] = n
		dir.children[name] = id
		e.uint32(0)
		e.bool(true)
		e.opaque(fhOf(id))
		e.bool(true)
		s.fattr(e, id)
		e.bool(false)
		e.bool(false)
		return e.b, name
	case procRmdir.proc, procRemove.proc:
		_, dir := node()
		name := string(d.opaque(maxNameSize))
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
	case procRename.proc:
		_, from := node()
		fromName := string(d.opaque(maxNameSize))
		toID, to := node()
		toName := string(d.opaque(maxNameSize))
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
	case procReaddirplus.proc:
		_, dir := node()
		cookie := d.uint64()
		e.uint32(0)
		e.bool(false)
		e.fixed(make([]byte, 8))
		names := make([]string, 0, len(dir.children))
		for n := range dir.children {
			names = append(names, n)
		}
		sort.Strings(names)
		for i, n := range names {
			if uint64(i) < cookie {
				continue
			}
			e.bool(true)
			e.uint64(dir.children[n])
			e.string(n)
			e.uint64(uint64(i + 1))
			e.bool(true)
			s.fattr(e, dir.children[n])
			e.bool(true)
			e.opaque(fhOf(dir.children[n]))
		}
		e.bool(false)
		e.bool(true)
		return e.b, ""
	}
	return status(nfsc.NFS3ErrNotSupp, 0)
}
