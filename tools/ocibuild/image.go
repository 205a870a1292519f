package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image: the binary, an /etc/passwd and /etc/group naming the
// non-root user it runs as, nothing else (no shell, no libc: the binary
// is static; no CA bundle: it talks TLS only to the API server, whose CA
// comes with the ServiceAccount).
const (
	binaryPath = "/nfs-subdir-provisioner"
	uid        = 65532
	userName   = "nonroot"
)

// Spec is what one build takes.
type Spec struct {
	Binaries                  flagValue // "os/arch" → path of the static binary
	Version, Revision, Source string
	Name                      string // repository, for the layout's ref.name
	Created                   time.Time
}

type flagValue interface {
	String() string
	Set(string) error
}

func (s Spec) labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "nfs-subdir-provisioner",
		"org.opencontainers.image.description": "Kubernetes NFS subdirectory provisioner that speaks NFSv3 itself",
		"org.opencontainers.image.source":      s.Source,
		"org.opencontainers.image.version":     s.Version,
		"org.opencontainers.image.revision":    s.Revision,
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.created":     s.Created.Format(time.RFC3339),
	}
}

// Index builds the image index of every platform in s.
func Index(s Spec) (v1.ImageIndex, error) {
	bins := s.Binaries.(binaries)
	platforms := make([]string, 0, len(bins))
	for p := range bins {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		osName, arch, _ := strings.Cut(p, "/")
		img, err := platformImage(s, osName, arch, bins[p])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: osName, Architecture: arch}},
		})
	}
	return idx, nil
}

func platformImage(s Spec, osName, arch, binary string) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	layerTar, err := rootfs(bin, s.Created)
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
		CreatedBy: "ocibuild: " + binaryPath + ", /etc/passwd, /etc/group",
		Comment:   "static binary built by make build",
	}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = osName, arch
	cfg.Created = v1.Time{Time: s.Created}
	cfg.Config.User = fmt.Sprintf("%d:%d", uid, uid)
	cfg.Config.Entrypoint = []string{binaryPath}
	cfg.Config.Cmd = nil
	cfg.Config.Env = []string{"PATH=/"}
	cfg.Config.Labels = s.labels()
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, v1.Time{Time: s.Created})
}

// rootfs is the layer's tar: fixed owners and times, sorted, so the same
// binary always gives the same layer digest.
func rootfs(bin []byte, created time.Time) ([]byte, error) {
	files := []struct {
		name string
		mode int64
		data []byte
		dir  bool
	}{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: fmt.Appendf(nil, "root:x:0:\n%s:x:%d:\n", userName, uid)},
		{name: "etc/passwd", mode: 0o644, data: fmt.Appendf(nil, "root:x:0:0:root:/:/sbin/nologin\n%s:x:%d:%d:%s:/:/sbin/nologin\n", userName, uid, uid, userName)},
		{name: strings.TrimPrefix(binaryPath, "/"), mode: 0o755, data: bin},
	}
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: created, Format: tar.FormatPAX, Typeflag: tar.TypeReg}
		if f.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := w.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteLayout writes the index of s as an OCI image-layout tarball at out
// and returns the index's digest.
func WriteLayout(s Spec, out string) (v1.Hash, error) {
	idx, err := Index(s)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	// The layout's index.json points at the image index, named
	// repository:version, the name containerd (kind load image-archive)
	// imports it under.
	ref := s.Version
	if s.Name != "" {
		ref = s.Name + ":" + s.Version
	}
	return digest, writeLayoutTar(out, s.Created, func(p layout.Path) error {
		return p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": ref,
		}))
	})
}

// writeLayoutTar writes an OCI image layout, filled by add, as the
// tarball out.
func writeLayoutTar(out string, created time.Time, add func(layout.Path) error) error {
	dir, err := os.MkdirTemp("", "ocibuild-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := add(p); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return tarDir(dir, out, created)
}

// tarDir writes the files below dir into the tarball out, sorted, with
// fixed owners and times.
func tarDir(dir, out string, created time.Time) error {
	var names []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := tar.NewWriter(f)
	for _, p := range names {
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: created, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: info.Size()}
		if info.IsDir() {
			h.Name += "/"
			h.Mode, h.Typeflag, h.Size = 0o755, tar.TypeDir, 0
		}
		if err := w.WriteHeader(h); err != nil {
			return err
		}
		if !info.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if _, err := w.Write(data); err != nil {
				return err
			}
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return f.Close()
}

// ReadLayout opens an OCI image-layout tarball and returns its image index.
func ReadLayout(layoutTar string) (v1.ImageIndex, func(), error) {
	dir, err := os.MkdirTemp("", "ocibuild-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	if err := untar(layoutTar, dir); err != nil {
		cleanup()
		return nil, nil, err
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	top, err := p.ImageIndex()
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	m, err := top.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		cleanup()
		return nil, nil, fmt.Errorf("%s: want one image index in index.json (%v)", layoutTar, err)
	}
	idx, err := top.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return idx, cleanup, nil
}

func untar(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	r := tar.NewReader(f)
	for {
		h, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(target, filepath.Clean(dir)+string(os.PathSeparator)) {
			return fmt.Errorf("%s: entry %q leaves the layout", file, h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			data, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			if err := os.WriteFile(target, data, 0o644); err != nil {
				return err
			}
		}
	}
}

// Push pushes the image index of a layout tarball to ref.
func Push(layoutTar, ref string, insecure bool) (v1.Hash, error) {
	idx, cleanup, err := ReadLayout(layoutTar)
	if err != nil {
		return v1.Hash{}, err
	}
	defer cleanup()
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	tag, err := name.ParseReference(ref, opts...)
	if err != nil {
		return v1.Hash{}, err
	}
	// Credentials as docker and crane keep them (~/.docker/config.json,
	// credential helpers); anonymous when there are none.
	if err := remote.WriteIndex(tag, idx, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return idx.Digest()
}
