//go:build e2e

package e2e

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// exportBacking maps NFS paths of one export to the local directory behind it, so tests can check
// what the provisioner did with os.Stat, independently of any NFS client.
type exportBacking struct {
	nfsPath  string // the path clients MOUNT
	localDir string // the directory the server exports
}

func defaultExport() exportBacking {
	return exportBacking{nfsPath: suite.env.nfsPath, localDir: suite.env.exportDir}
}

func squashExport() exportBacking {
	return exportBacking{nfsPath: suite.env.squashNFSPath, localDir: suite.env.squashExportDir}
}

// volumeDir is the local directory behind a PV's spec.nfs.path, which must lie inside this export.
func (e exportBacking) volumeDir(t *testing.T, volume *corev1.PersistentVolume) string {
	t.Helper()
	if volume.Spec.NFS == nil {
		t.Fatalf("PV %s has no spec.nfs", volume.Name)
	}
	relative, ok := e.relative(volume.Spec.NFS.Path)
	if !ok || relative == "" {
		t.Fatalf("PV %s path %q is not a directory below the export %q", volume.Name, volume.Spec.NFS.Path, e.nfsPath)
	}
	return filepath.Join(e.localDir, filepath.FromSlash(relative))
}

// relative is nfsPath relative to the export's mount path, "" for the export root.
func (e exportBacking) relative(nfsPath string) (string, bool) {
	clean := path.Clean(nfsPath)
	root := path.Clean(e.nfsPath)
	if clean == root {
		return "", true
	}
	if !strings.HasPrefix(clean, strings.TrimSuffix(root, "/")+"/") {
		return "", false
	}
	return strings.TrimPrefix(clean, strings.TrimSuffix(root, "/")+"/"), true
}

// dirAttrs are what a test expects of a provisioned directory.
type dirAttrs struct {
	mode     fs.FileMode // permission bits (0777 etc.)
	uid, gid uint32
}

// assertDir checks that dir exists as a directory with exactly the given permission bits and owner.
func assertDir(t *testing.T, dir string, want dirAttrs) {
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
	got := dirAttrs{mode: info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), uid: stat.Uid, gid: stat.Gid}
	if got != want {
		t.Errorf("%s: mode %#o owner %d:%d; want mode %#o owner %d:%d", dir, got.mode, got.uid, got.gid, want.mode, want.uid, want.gid)
	}
}

func assertExists(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("want %s to exist: %v", path, err)
	}
}

func assertNotExists(t *testing.T, path string) {
	t.Helper()
	_, err := os.Lstat(path)
	if err == nil {
		t.Errorf("want %s gone, it exists", path)
	} else if !os.IsNotExist(err) {
		t.Errorf("checking %s: %v", path, err)
	}
}

// writeMarker puts a file into a provisioned directory (through the backing directory) so delete
// policies can be checked for data, not only names.
func writeMarker(t *testing.T, dir string) (path, content string) {
	t.Helper()
	path, content = filepath.Join(dir, "marker.txt"), "written by "+t.Name()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("writing a marker file into the provisioned directory: %v", err)
	}
	return path, content
}

func assertFileContent(t *testing.T, path, want string) {
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

// entriesMentioning lists paths under root (at most depth levels deep) whose name contains any of
// needles: how a test shows that nothing was created for a refused claim.
func entriesMentioning(t *testing.T, root string, depth int, needles ...string) []string {
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

// listNames is the set of entry names directly in dir.
func listNames(t *testing.T, dir string) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	names := make(map[string]bool, len(entries))
	for _, entry := range entries {
		names[entry.Name()] = true
	}
	return names
}
