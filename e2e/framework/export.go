//go:build e2e

package framework

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Export maps NFS paths of one export to the local directory behind it, so tests can check what
// the provisioner did with os.Stat, independently of any NFS client.
type Export struct {
	NFSPath  string // the path clients MOUNT
	LocalDir string // the directory the server exports
}

// DefaultExport is the no_root_squash export the provisioners are given.
func (f *Framework) DefaultExport() Export {
	return Export{NFSPath: f.Env.NFSPath, LocalDir: f.Env.ExportDir}
}

// SquashExport is the root_squash export.
func (f *Framework) SquashExport() Export {
	return Export{NFSPath: f.Env.SquashNFSPath, LocalDir: f.Env.SquashExportDir}
}

// VolumeDir is the local directory behind a PV's spec.nfs.path, which must lie inside this export.
func (e Export) VolumeDir(t testing.TB, volume *corev1.PersistentVolume) string {
	t.Helper()
	if volume.Spec.NFS == nil {
		t.Fatalf("PV %s has no spec.nfs", volume.Name)
	}
	relative, ok := e.Relative(volume.Spec.NFS.Path)
	if !ok || relative == "" {
		t.Fatalf("PV %s path %q is not a directory below the export %q", volume.Name, volume.Spec.NFS.Path, e.NFSPath)
	}
	return filepath.Join(e.LocalDir, filepath.FromSlash(relative))
}

// Relative is nfsPath relative to the export's mount path, "" for the export root; false when it
// lies outside the export.
func (e Export) Relative(nfsPath string) (string, bool) {
	clean := path.Clean(nfsPath)
	root := path.Clean(e.NFSPath)
	if clean == root {
		return "", true
	}
	prefix := strings.TrimSuffix(root, "/") + "/"
	if !strings.HasPrefix(clean, prefix) {
		return "", false
	}
	return strings.TrimPrefix(clean, prefix), true
}

// Names lists the entries directly in the export's directory whose names begin with prefix
// ("" for all), sorted.
func (e Export) Names(t testing.TB, prefix string) []string {
	t.Helper()
	return NamesWithPrefix(t, e.LocalDir, prefix)
}

// DirAttrs are what a test expects of a provisioned directory.
type DirAttrs struct {
	Mode     fs.FileMode // permission bits (0777 etc.)
	UID, GID uint32
}

// AssertDir checks that dir exists as a directory with exactly the given permission bits and owner.
func AssertDir(t testing.TB, dir string, want DirAttrs) {
	t.Helper()
	info, err := os.Stat(dir)
	if err != nil {
		t.Errorf("directory on the export: %v", err)
		return
	}
	if !info.IsDir() {
		t.Errorf("%s is a %s, want a directory", dir, info.Mode().Type())
		return
	}
	stat := info.Sys().(*syscall.Stat_t)
	got := DirAttrs{Mode: info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), UID: stat.Uid, GID: stat.Gid}
	if got != want {
		t.Errorf("%s: mode %#o owner %d:%d; want mode %#o owner %d:%d", dir, got.Mode, got.UID, got.GID, want.Mode, want.UID, want.GID)
	}
}

// AssertExists checks that path exists (a symlink counts; it is not followed).
func AssertExists(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("want %s to exist: %v", path, err)
	}
}

// AssertNotExists checks that path does not exist.
func AssertNotExists(t testing.TB, path string) {
	t.Helper()
	_, err := os.Lstat(path)
	if err == nil {
		t.Errorf("want %s gone, it exists", path)
	} else if !os.IsNotExist(err) {
		t.Errorf("checking %s: %v", path, err)
	}
}

// WriteMarker puts a file into a provisioned directory (through the backing directory) so delete
// policies can be checked for data, not only names.
func WriteMarker(t testing.TB, dir string) (path, content string) {
	t.Helper()
	path, content = filepath.Join(dir, "marker.txt"), "written by "+t.Name()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("writing a marker file into the provisioned directory: %v", err)
	}
	return path, content
}

// AssertFileContent checks that path holds exactly want.
func AssertFileContent(t testing.TB, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("reading %s: %v", path, err)
		return
	}
	if string(got) != want {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
}

// EntriesMentioning lists paths under root (at most depth levels deep) whose name contains any of
// needles: how a test shows that nothing was created for a refused claim.
func EntriesMentioning(t testing.TB, root string, depth int, needles ...string) []string {
	t.Helper()
	var found []string
	rootDepth := strings.Count(filepath.Clean(root), string(filepath.Separator))
	err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed while walking (another test's cleanup)
			}
			return err
		}
		if strings.Count(path, string(filepath.Separator))-rootDepth > depth {
			return filepath.SkipDir
		}
		for _, needle := range needles {
			if needle != "" && strings.Contains(entry.Name(), needle) {
				found = append(found, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	return found
}

// NamesWithPrefix lists the entries directly in dir whose names begin with prefix, sorted.
func NamesWithPrefix(t testing.TB, dir, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	var names []string
	for _, entry := range entries {
		if strings.HasPrefix(entry.Name(), prefix) {
			names = append(names, entry.Name())
		}
	}
	sort.Strings(names)
	return names
}

// ListNames is the set of entry names directly in dir.
func ListNames(t testing.TB, dir string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, name := range NamesWithPrefix(t, dir, "") {
		names[name] = true
	}
	return names
}
