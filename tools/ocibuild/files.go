package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// FilesSpec is an image made of files of this machine: the test bed's redis, shell and pause
// images are Debian's own binaries (redis-server, busybox-static), each with the shared
// libraries and the dynamic loader it needs, found from its ELF headers as the loader would.
type FilesSpec struct {
	Name       string   // the image's full reference, e.g. nfsp.local/redis:7.0.15
	Files      []string // absolute paths on this machine, copied to the same path in the image
	Links      []string // "path=target": symbolic links
	Dirs       []string // empty directories (mode 1777 for /tmp, 0755 otherwise)
	Entrypoint []string
	Cmd        []string
	User       string
	Env        []string
	Created    time.Time
	// LibraryRoot is where libraries are looked up ("/" unless a test says otherwise).
	LibraryRoot string
}

// libraryDirs are the directories Debian's loader searches for amd64 libraries, in order.
var libraryDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/lib", "/usr/lib"}

// Closure is every file the image needs: spec's files, the loader of each dynamically linked
// one and the libraries they name (DT_NEEDED), transitively.
func (s FilesSpec) Closure() ([]string, error) {
	root := s.LibraryRoot
	if root == "" {
		root = "/"
	}
	seen := map[string]bool{}
	var order []string
	queue := append([]string(nil), s.Files...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		order = append(order, p)
		needs, err := elfNeeds(root, p)
		if err != nil {
			return nil, err
		}
		queue = append(queue, needs...)
	}
	sort.Strings(order)
	return order, nil
}

// elfNeeds is what an ELF file needs to run: its interpreter and its DT_NEEDED libraries,
// resolved in libraryDirs (RUNPATH first). A file that is not ELF needs nothing.
func elfNeeds(root, p string) ([]string, error) {
	f, err := elf.Open(filepath.Join(root, p))
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) || errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("read ELF %s: %w", p, err)
	}
	defer f.Close()
	var needs []string
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(prog.Open())
		if err != nil {
			return nil, fmt.Errorf("read the interpreter of %s: %w", p, err)
		}
		needs = append(needs, strings.TrimRight(string(b), "\x00"))
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return nil, nil // no dynamic section: static
	}
	dirs := libraryDirs
	if runpath, _ := f.DynString(elf.DT_RUNPATH); len(runpath) > 0 {
		dirs = append(strings.Split(runpath[0], ":"), dirs...)
	}
	for _, lib := range libs {
		found := ""
		for _, d := range dirs {
			candidate := path.Join(d, lib)
			if st, err := os.Stat(filepath.Join(root, candidate)); err == nil && st.Mode().IsRegular() {
				found = candidate
				break
			}
		}
		if found == "" {
			return nil, fmt.Errorf("%s needs %s, which is in none of %v", p, lib, dirs)
		}
		needs = append(needs, found)
	}
	return needs, nil
}

// FilesImage builds the single-platform (linux/amd64) image of s.
func FilesImage(s FilesSpec) (v1.Image, error) {
	files, err := s.Closure()
	if err != nil {
		return nil, err
	}
	layerTar, err := s.layer(files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created:   v1.Time{Time: s.Created},
		CreatedBy: "ocibuild files: " + strings.Join(s.Files, " "),
	}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Created = v1.Time{Time: s.Created}
	cfg.Config.User = s.User
	cfg.Config.Entrypoint = s.Entrypoint
	cfg.Config.Cmd = s.Cmd
	cfg.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}, s.Env...)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, v1.Time{Time: s.Created})
}

// layer is the tar of files (their contents as the machine has them, symbolic links followed),
// s's links and directories, and every parent directory: sorted, fixed owners and times.
func (s FilesSpec) layer(files []string) ([]byte, error) {
	root := s.LibraryRoot
	if root == "" {
		root = "/"
	}
	type entry struct {
		h    tar.Header
		from string // file content to copy
	}
	entries := map[string]entry{}
	var addParents func(p string)
	addParents = func(p string) {
		d := path.Dir(p)
		if d == "/" || d == "." {
			return
		}
		if _, ok := entries[d]; !ok {
			entries[d] = entry{h: tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}}
			addParents(d)
		}
	}
	for _, f := range files {
		st, err := os.Stat(filepath.Join(root, f))
		if err != nil {
			return nil, fmt.Errorf("image file %s: %w", f, err)
		}
		entries[f] = entry{h: tar.Header{Typeflag: tar.TypeReg, Mode: int64(st.Mode().Perm()), Size: st.Size()}, from: filepath.Join(root, f)}
		addParents(f)
	}
	for _, l := range s.Links {
		name, target, ok := strings.Cut(l, "=")
		if !ok || !path.IsAbs(name) {
			return nil, fmt.Errorf("link %q: want /path=target", l)
		}
		entries[name] = entry{h: tar.Header{Typeflag: tar.TypeSymlink, Mode: 0o777, Linkname: target}}
		addParents(name)
	}
	for _, d := range s.Dirs {
		mode := int64(0o755)
		if d == "/tmp" {
			mode = 0o1777
		}
		entries[d] = entry{h: tar.Header{Typeflag: tar.TypeDir, Mode: mode}}
		addParents(d)
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, n := range names {
		e := entries[n]
		h := e.h
		h.Name = strings.TrimPrefix(n, "/")
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		h.ModTime, h.Format = s.Created, tar.FormatPAX
		if err := w.WriteHeader(&h); err != nil {
			return nil, err
		}
		if e.from != "" {
			data, err := os.ReadFile(e.from)
			if err != nil {
				return nil, err
			}
			if int64(len(data)) != h.Size {
				return nil, fmt.Errorf("%s changed while it was read", e.from)
			}
			if _, err := w.Write(data); err != nil {
				return nil, err
			}
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteFilesLayout writes the image of s as an OCI image-layout tarball at out, named s.Name
// the two ways importers read a name (ctr images import and kind load image-archive), and
// returns the manifest's digest.
func WriteFilesLayout(s FilesSpec, out string) (v1.Hash, error) {
	img, err := FilesImage(s)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	return digest, writeLayoutTar(out, s.Created, func(p layout.Path) error {
		return p.AppendImage(img, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": s.Name,
			"io.containerd.image.name":          s.Name,
		}), layout.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	})
}
