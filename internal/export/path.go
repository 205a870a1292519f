package export

import (
	"fmt"
	"io/fs"
	"strings"
)

// CheckPath validates a path given to an FS method. The root "." is
// accepted only when allowRoot is true.
func CheckPath(p string, allowRoot bool) error {
	if !fs.ValidPath(p) || strings.IndexByte(p, 0) >= 0 {
		return fmt.Errorf("%q: %w", p, ErrInvalidPath)
	}
	if p == "." && !allowRoot {
		return fmt.Errorf("%q is the export root: %w", p, ErrInvalidPath)
	}
	return nil
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
