package provisioner

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
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

// archive renames dir to the first free ArchiveName. A missing dir means an
// earlier attempt already archived it (or a user removed it): success.
func archive(ctx context.Context, fsys renamer, dir string) (string, error) {
	for n := 0; n < maxArchiveAttempts; n++ {
		target := ArchiveName(dir, n)
		err := fsys.Rename(ctx, dir, target)
		switch {
		case err == nil:
			return target, nil
		case errors.Is(err, export.ErrExist):
			continue
		case errors.Is(err, export.ErrNotExist):
			return "", nil
		default:
			return "", err
		}
	}
	return "", fmt.Errorf("%d archive names for it are taken; remove old archived-* directories", maxArchiveAttempts)
}

type renamer interface {
	Rename(ctx context.Context, from, to string) error
}
