package provisioner

import (
	"fmt"
	"path"
)

// archivePrefix is the anchor project's prefix for archived directories.
const archivePrefix = "archived-"

// maxArchiveAttempts bounds the search for a free archive name.
const maxArchiveAttempts = 100

// ArchiveName is the n-th candidate name for archiving dir (a path relative
// to the export root): "archived-<base>" in the same parent for n == 0, then
// "archived-<base>-2", "-3", … Long names are shortened with a hash so the
// candidate is always a valid component.
func ArchiveName(dir string, n int) string {
	parent, base := path.Split(dir)
	name := archivePrefix + base
	if n > 0 {
		name = fmt.Sprintf("%s-%d", name, n+1)
	}
	return parent + ShortenName(name)
}
