package export

import (
	"fmt"
	"io/fs"
	"strings"
)

// MaxNameBytes is the longest path component: NAME_MAX on every NFS server we know of.
const MaxNameBytes = 255

// SplitPath validates a path given to an FS method (slash-separated, relative to the export root,
// no "." or ".." elements, no NUL, no component over MaxNameBytes) and splits it into its
// elements. The root "." (no elements) is accepted only when allowRoot is true.
func SplitPath(p string, allowRoot bool) ([]string, error) {
	if !fs.ValidPath(p) || strings.IndexByte(p, 0) >= 0 {
		return nil, fmt.Errorf("%q: %w", p, ErrInvalidPath)
	}
	if p == "." {
		if !allowRoot {
			return nil, fmt.Errorf("%q is the export root: %w", p, ErrInvalidPath)
		}
		return nil, nil
	}
	elems := strings.Split(p, "/")
	for _, e := range elems {
		if len(e) > MaxNameBytes {
			return nil, fmt.Errorf("%q: component longer than %d bytes: %w", p, MaxNameBytes, ErrInvalidPath)
		}
	}
	return elems, nil
}

// TreePath names a directory deep in a tree being walked, for an error
// message: its last few path elements, with ".../" when some are left out,
// so the message stays short however deep the tree.
func TreePath(elems []string, truncated bool) string {
	const show = 3
	p := strings.Join(elems[max(0, len(elems)-show):], "/")
	if truncated || len(elems) > show {
		p = ".../" + p
	}
	return p
}
