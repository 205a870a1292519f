package export_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// memTree is an in-memory export.Tree whose nodes are paths, for the engine's own rules; the
// backends' contract is exporttest's. shortReads answers every READ with half of what was asked.
type memTree struct {
	mu         sync.Mutex
	objects    map[string]*memObject
	shortReads bool
	listings   atomic.Int64
	page       int
}

type memObject struct {
	info export.FileInfo
	data []byte
}

func newMemTree() *memTree {
	return &memTree{objects: map[string]*memObject{".": {info: export.FileInfo{Type: export.TypeDir, Mode: 0o755}}}, page: 50}
}

func (m *memTree) put(p string, o *memObject) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects[p] = o
}

func (m *memTree) get(p string) (*memObject, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[p]
	return o, ok
}

func (m *memTree) OpenDir(_ context.Context, dir string) (export.Node, export.FileInfo, error) {
	o, ok := m.get(dir)
	if !ok {
		return nil, export.FileInfo{}, export.ErrNotExist
	}
	return dir, o.info, nil
}

func (m *memTree) ReadDir(_ context.Context, n export.Node, at export.DirCursor) ([]export.DirEntry, export.DirCursor, bool, error) {
	m.listings.Add(1)
	dir := n.(string)
	m.mu.Lock()
	var names []string
	for p := range m.objects {
		if p != "." && path.Dir(p) == dir {
			names = append(names, p)
		}
	}
	m.mu.Unlock()
	sort.Strings(names)
	var ents []export.DirEntry
	i := int(at.Cookie)
	for ; i < len(names) && len(ents) < m.page; i++ {
		o, _ := m.get(names[i])
		ents = append(ents, export.DirEntry{Name: path.Base(names[i]), Node: names[i], Info: o.info, Next: export.DirCursor{Cookie: uint64(i + 1)}})
	}
	return ents, export.DirCursor{Cookie: uint64(i)}, i >= len(names), nil
}

func (m *memTree) ReadAt(_ context.Context, n export.Node, p []byte, off uint64) (int, bool, error) {
	o, _ := m.get(n.(string))
	if off >= uint64(len(o.data)) {
		return 0, true, nil
	}
	want := len(p)
	if m.shortReads && want > 1 {
		want /= 2
	}
	got := copy(p[:want], o.data[off:])
	return got, off+uint64(got) == uint64(len(o.data)), nil
}

func (m *memTree) ReadLink(_ context.Context, n export.Node) (string, error) {
	o, _ := m.get(n.(string))
	return string(o.data), nil
}

func (m *memTree) make(parent export.Node, name string, a export.FileInfo, data []byte) (export.Node, error) {
	p := path.Join(parent.(string), name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[p]; ok {
		return nil, export.ErrExist
	}
	m.objects[p] = &memObject{info: a, data: data}
	return p, nil
}

func (m *memTree) Mkdir(_ context.Context, parent export.Node, name string, a export.FileInfo) (export.Node, error) {
	return m.make(parent, name, a, nil)
}

func (m *memTree) Create(_ context.Context, parent export.Node, name string, a export.FileInfo) (export.Node, error) {
	return m.make(parent, name, a, nil)
}

func (m *memTree) WriteAt(_ context.Context, n export.Node, p []byte, off uint64, _ bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.objects[n.(string)]
	if end := int(off) + len(p); end > len(o.data) {
		o.data = append(o.data, make([]byte, end-len(o.data))...)
	}
	copy(o.data[off:], p)
	return nil
}

func (m *memTree) Symlink(_ context.Context, parent export.Node, name, target string, a export.FileInfo) error {
	_, err := m.make(parent, name, a, []byte(target))
	return err
}

func (m *memTree) Finish(_ context.Context, n export.Node, a export.FileInfo) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.objects[n.(string)]
	if a.Type == export.TypeFile && uint64(len(o.data)) < a.Size {
		o.data = append(o.data, make([]byte, int(a.Size)-len(o.data))...)
	}
	o.info = a
	return nil
}

func (m *memTree) IOSize(context.Context) (int, error) { return 64 << 10, nil }

func file(data []byte) *memObject {
	return &memObject{info: export.FileInfo{Type: export.TypeFile, Mode: 0o644, Size: uint64(len(data))}, data: data}
}

func dir() *memObject { return &memObject{info: export.FileInfo{Type: export.TypeDir, Mode: 0o755}} }

// Short reads before the end of a file are read on: the copy holds every byte.
func TestCopyTreeShortReads(t *testing.T) {
	src, dst := newMemTree(), newMemTree()
	src.shortReads = true
	src.put("src", dir())
	data := bytes.Repeat([]byte("0123456789"), 30000) // 300,000 bytes: several 64 KiB chunks
	src.put("src/f", file(data))
	if err := export.CopyTree(context.Background(), src, "src", dst, "copy", export.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if o, ok := dst.get("copy/f"); !ok || !bytes.Equal(o.data, data) {
		t.Fatalf("copy of a file read in short reads differs from it")
	}
}

// A directory with many subdirectories is listed about once per page, not once per subdirectory.
func TestCopyTreeManySubdirectories(t *testing.T) {
	src, dst := newMemTree(), newMemTree()
	src.put("src", dir())
	const subdirs = 1000
	for i := 0; i < subdirs; i++ {
		src.put(fmt.Sprintf("src/d%04d", i), dir())
	}
	if err := export.CopyTree(context.Background(), src, "src", dst, "copy", export.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	// each subdirectory: one listing (empty); the parent: 1000/50 pages
	if n := src.listings.Load(); n > subdirs+subdirs/50+2 {
		t.Errorf("%d listings for %d subdirectories of one directory", n, subdirs)
	}
	if _, ok := dst.get(fmt.Sprintf("copy/d%04d", subdirs-1)); !ok {
		t.Error("the last subdirectory was not copied")
	}
}

// A source holding more than MaxBytes (a hard link farm, a huge sparse file) ends the copy.
func TestCopyTreeMaxBytes(t *testing.T) {
	src, dst := newMemTree(), newMemTree()
	src.put("src", dir())
	for i := 0; i < 10; i++ {
		src.put(fmt.Sprintf("src/f%d", i), file(make([]byte, 100000)))
	}
	err := export.CopyTree(context.Background(), src, "src", dst, "copy", export.CopyOptions{MaxBytes: 500000})
	if !errors.Is(err, export.ErrTooBig) {
		t.Fatalf("copy of 1 MB with MaxBytes 500 kB: %v, want ErrTooBig", err)
	}
	if !strings.Contains(err.Error(), "500000") {
		t.Errorf("error %q does not say the limit", err)
	}
}

// A tree with more entries than MaxEntries (one growing while it is copied) ends the copy.
func TestCopyTreeMaxEntries(t *testing.T) {
	src, dst := newMemTree(), newMemTree()
	src.put("src", dir())
	for i := 0; i < 300; i++ {
		src.put(fmt.Sprintf("src/f%03d", i), file(nil))
	}
	err := export.CopyTree(context.Background(), src, "src", dst, "copy", export.CopyOptions{MaxEntries: 100})
	if !errors.Is(err, export.ErrTooManyEntries) || !strings.Contains(err.Error(), "100 entries") {
		t.Fatalf("copy of 300 entries with MaxEntries 100: %v, want ErrTooManyEntries saying the limit", err)
	}
}
