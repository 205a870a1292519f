package wire

import "sync"

// dirRef is a directory's file handle and the attributes it had when the
// handle was learnt (owner and mode choose credentials; they may be stale,
// which costs at most a retry with other credentials).
type dirRef struct {
	fh    []byte
	attrs attrs
	gen   uint64 // the cache epoch its parent was read in (see dirCache.put)
}

type dirNode struct {
	dirRef
	children map[string]*dirNode
}

// dirCache maps directory paths below the export root to handles, as a
// tree so that forgetting a directory forgets everything below it.
type dirCache struct {
	mu   sync.Mutex
	root *dirNode
	n    int // nodes inserted since the last reset (an upper bound)
	max  int
	// gen is the epoch: it moves on every forget and reset. A handle
	// learnt from a parent read before either may be stale — a LOOKUP of
	// "vol" in flight while vol is renamed to archived-vol returns the
	// handle that now names the archive (handles follow renames on Linux
	// and Ganesha), and a reset follows a server restart — so an operation
	// still running with it must not put it back into the cache.
	gen uint64
	// resets counts resets alone, for refresh (see session.refresh).
	resets uint64
}

func newDirCache(root dirRef, max int) *dirCache {
	return &dirCache{root: &dirNode{dirRef: root}, max: max}
}

// deepest returns the deepest cached directory on the way to elems and
// how many elements of elems it covers (0: the root).
func (c *dirCache) deepest(elems []string) (dirRef, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.root
	i := 0
	for ; i < len(elems); i++ {
		next := n.children[elems[i]]
		if next == nil {
			break
		}
		n = next
	}
	ref := n.dirRef
	ref.gen = c.gen
	return ref, i
}

func (c *dirCache) rootRef() dirRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	ref := c.root.dirRef
	ref.gen = c.gen
	return ref
}

// put records the directory at elems; its parent must be cached already
// and ref must come from this generation (otherwise nothing is recorded).
func (c *dirCache) put(elems []string, ref dirRef) {
	if len(elems) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ref.gen != c.gen {
		return
	}
	n := c.parentNode(elems)
	if n == nil {
		return
	}
	leaf := elems[len(elems)-1]
	if old := n.children[leaf]; old != nil {
		// Same path, new attributes or a new handle: the subtree is kept
		// only when the handle is the same directory's.
		if string(old.fh) != string(ref.fh) {
			old.children = nil
		}
		old.dirRef = ref
		return
	}
	if c.n >= c.max {
		c.root.children = nil
		c.n = 0
		if len(elems) > 1 {
			return
		}
		n = c.root
	}
	if n.children == nil {
		n.children = make(map[string]*dirNode)
	}
	n.children[leaf] = &dirNode{dirRef: ref}
	c.n++
}

// forget drops elems and everything below it, and starts a new epoch.
func (c *dirCache) forget(elems []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if len(elems) == 0 {
		c.root.children = nil
		return
	}
	if n := c.parentNode(elems); n != nil {
		delete(n.children, elems[len(elems)-1])
	}
}

// parentNode is the cached node of elems' parent, nil when it is not
// cached; c.mu is held.
func (c *dirCache) parentNode(elems []string) *dirNode {
	n := c.root
	for _, e := range elems[:len(elems)-1] {
		if n = n.children[e]; n == nil {
			return nil
		}
	}
	return n
}

// reset forgets everything, with a new root.
func (c *dirCache) reset(root dirRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.root = &dirNode{dirRef: root}
	c.n = 0
	c.gen++
	c.resets++
}

// resetCount is how many times the cache was reset.
func (c *dirCache) resetCount() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resets
}

func (c *dirCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var count func(*dirNode) int
	count = func(n *dirNode) int {
		k := 0
		for _, ch := range n.children {
			k += 1 + count(ch)
		}
		return k
	}
	return count(c.root)
}
