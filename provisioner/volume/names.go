package volume

import (
	"fmt"
	"path"
	"strings"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/pathpattern"
)

// ArchivePrefix is the anchor project's prefix for archived directories: no live volume is ever
// given a name that begins with it.
const ArchivePrefix = "archived-"

// MaxArchiveAttempts bounds the search for a free archive name.
const MaxArchiveAttempts = 100

// StagingDir is the directory at the root of every export where clones are copied before they
// are renamed into place (<StagingDir>/<install>/<pv name>.<attempt>). No claim's directory is ever
// in it.
const StagingDir = ".nfsp-clones"

// ArchiveName is the n-th candidate name for archiving dir (a path relative to the export root):
// "archived-<base>" in the same parent for n == 0, then "archived-<base>-2", "-3", … Long names
// are shortened with a hash so the candidate is always a valid component.
func ArchiveName(dir string, n int) string {
	parent, base := path.Split(dir)
	name := ArchivePrefix + base
	if n > 0 {
		name = fmt.Sprintf("%s-%d", name, n+1)
	}
	return parent + pathpattern.ShortenName(name)
}

// IsArchiveName reports whether a path element is named like an archive.
func IsArchiveName(name string) bool { return strings.HasPrefix(name, ArchivePrefix) }
