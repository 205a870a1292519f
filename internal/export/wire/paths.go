package wire

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/nfs-subdir/provisioner/internal/export"
)

const maxComponent = 255

// splitPath validates a path relative to the export root and splits it.
// "." is the root (no elements).
func splitPath(p string) ([]string, error) {
	if !fs.ValidPath(p) || strings.ContainsRune(p, 0) {
		return nil, fmt.Errorf("%q: %w", p, export.ErrInvalidPath)
	}
	if p == "." {
		return nil, nil
	}
	elems := strings.Split(p, "/")
	for _, e := range elems {
		if len(e) > maxComponent {
			return nil, fmt.Errorf("%q: component longer than %d bytes: %w", p, maxComponent, export.ErrInvalidPath)
		}
	}
	return elems, nil
}
