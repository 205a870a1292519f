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
