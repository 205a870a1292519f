package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The image round trip against a real registry server on 127.0.0.1: the
// layout tarball `make image` wrote (IMAGE_TAR) is pushed, pulled back and
// checked platform by platform; the amd64 binary taken from the pulled
// layer runs; two builds of the same input have one digest; the chart is
// pushed and pulled with helm (HELM, CHART_TGZ); the SBOM (SBOM) names the
// modules the binary is made of.

func need(t *testing.T, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("NFSP_REQUIRE_IMAGE") != "" {
			t.Fatalf("%s is not set (make test-image sets it)", env)
		}
		t.Skipf("%s not set: run make test-image", env)
	}
	return v
}

func startRegistry(t *testing.T) string {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestImageRoundTrip(t *testing.T) {
	layoutTar := need(t, "IMAGE_TAR")
	version := need(t, "IMAGE_VERSION")
	host := startRegistry(t)
	ref := host + "/nfs-subdir-provisioner:" + version
	pushed, err := Push(layoutTar, ref, true)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(tag)
	if err != nil {
		t.Fatalf("pulling the index back: %v", err)
	}
	if got, _ := idx.Digest(); got != pushed {
		t.Errorf("pulled index digest %s, pushed %s", got, pushed)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	platforms := map[string]bool{}
	for _, d := range m.Manifests {
		if d.Platform == nil {
			t.Fatalf("manifest %s has no platform", d.Digest)
		}
		p := d.Platform.OS + "/" + d.Platform.Architecture
		platforms[p] = true
		img, err := remote.Image(tag.Context().Digest(d.Digest.String()), remote.WithPlatform(*d.Platform))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		checkConfig(t, p, img, version)
		bin := binaryOf(t, p, img)
		if p == "linux/amd64" {
			runVersion(t, bin, version)
		}
	}
	for _, want := range []string{"linux/amd64", "linux/arm64"} {
		if !platforms[want] {
			t.Errorf("no %s image in the index (have %v)", want, platforms)
		}
	}
}

func checkConfig(t *testing.T, platform string, img v1.Image, version string) {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("%s config: %v", platform, err)
	}
	if cfg.OS+"/"+cfg.Architecture != platform {
		t.Errorf("%s: config says %s/%s", platform, cfg.OS, cfg.Architecture)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("%s: user %q, want 65532:65532", platform, cfg.Config.User)
	}
	if strings.Join(cfg.Config.Entrypoint, " ") != binaryPath {
		t.Errorf("%s: entrypoint %v", platform, cfg.Config.Entrypoint)
	}
	for _, label := range []string{"source", "version", "revision", "licenses"} {
		if cfg.Config.Labels["org.opencontainers.image."+label] == "" {
			t.Errorf("%s: label org.opencontainers.image.%s missing", platform, label)
		}
	}
	if got := cfg.Config.Labels["org.opencontainers.image.version"]; got != version {
		t.Errorf("%s: version label %q, want %q", platform, got, version)
	}
}

// binaryOf returns the provisioner binary of the image's only layer, and
// checks the layer holds nothing but it and the user database.
func binaryOf(t *testing.T, platform string, img v1.Image) []byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%s: %d layers, %v; want one", platform, len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	r := tar.NewReader(rc)
	var bin []byte
	var names []string
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		switch h.Name {
		case "nfs-subdir-provisioner":
			if h.Mode&0o111 == 0 {
				t.Errorf("%s: the binary is not executable (mode %o)", platform, h.Mode)
			}
			if bin, err = io.ReadAll(r); err != nil {
				t.Fatal(err)
			}
		case "etc/passwd":
			data, _ := io.ReadAll(r)
			if !bytes.Contains(data, []byte(":65532:65532:")) {
				t.Errorf("%s: /etc/passwd has no uid 65532: %s", platform, data)
			}
		}
	}
	if bin == nil {
		t.Fatalf("%s: no binary in the layer (%v)", platform, names)
	}
	return bin
}

func runVersion(t *testing.T, bin []byte, version string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nfs-subdir-provisioner")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("the pulled binary --version: %v: %s", err, out)
	}
	if !strings.Contains(string(out), version) {
		t.Errorf("the pulled binary says %q, want version %s", out, version)
	}
}

// Two builds of the same binaries, version and time are one digest; a
// different time is another.
func TestReproducible(t *testing.T) {
	amd64 := need(t, "IMAGE_BIN_AMD64")
	arm64 := need(t, "IMAGE_BIN_ARM64")
	spec := func(created int64) Spec {
		return Spec{Binaries: binaries{"linux/amd64": amd64, "linux/arm64": arm64}, Version: "v-test", Revision: "r", Source: "s", Created: time.Unix(created, 0).UTC()}
	}
	dir := t.TempDir()
	a, err := WriteLayout(spec(1700000000), filepath.Join(dir, "a.tar"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := WriteLayout(spec(1700000000), filepath.Join(dir, "b.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("two builds: %s and %s", a, b)
	}
	ta, _ := os.ReadFile(filepath.Join(dir, "a.tar"))
	tb, _ := os.ReadFile(filepath.Join(dir, "b.tar"))
	if !bytes.Equal(ta, tb) {
		t.Error("the two layout tarballs differ byte for byte")
	}
	c, err := WriteLayout(spec(1700000001), filepath.Join(dir, "c.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if c == a {
		t.Error("another creation time gave the same digest: the time is not in the image")
	}
	t.Logf("digest of two builds: %s", a)
}

// The chart goes to the registry as an OCI artifact with helm push, and
// helm pull gives the same archive back.
func TestChartRoundTrip(t *testing.T) {
	helm := need(t, "HELM")
	chart := need(t, "CHART_TGZ")
	version := need(t, "CHART_VERSION")
	host := startRegistry(t)
	home := t.TempDir()
	run := func(args ...string) string {
		cmd := exec.Command(helm, args...)
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helm %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("push", chart, "oci://"+host+"/charts", "--plain-http")
	if !strings.Contains(out, "Digest:") {
		t.Errorf("helm push said %q", out)
	}
	pulled := t.TempDir()
	run("pull", "oci://"+host+"/charts/nfs-subdir-provisioner", "--version", version, "--plain-http", "-d", pulled)
	want, err := os.ReadFile(chart)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(pulled, filepath.Base(chart)))
	if err != nil {
		t.Fatalf("helm pull wrote no %s: %v", filepath.Base(chart), err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the pulled chart differs from the pushed one")
	}
}

// The SBOM lists the modules the binary is made of.
func TestSBOM(t *testing.T) {
	path := need(t, "SBOM")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var bom struct {
		BOMFormat  string `json:"bomFormat"`
		Components []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"components"`
	}
	if err := json.Unmarshal(data, &bom); err != nil {
		t.Fatal(err)
	}
	if bom.BOMFormat != "CycloneDX" {
		t.Errorf("bomFormat %q", bom.BOMFormat)
	}
	have := map[string]string{}
	for _, c := range bom.Components {
		have[c.Name] = c.Version
	}
	for _, want := range []string{"k8s.io/client-go", "sigs.k8s.io/sig-storage-lib-external-provisioner/v13", "github.com/willscott/go-nfs-client"} {
		if have[want] == "" {
			t.Errorf("the SBOM does not list %s (%d components)", want, len(bom.Components))
		}
	}
}
