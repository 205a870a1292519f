// Command ocibuild builds the provisioner's container image without a
// Docker engine: an OCI image index for linux/amd64 and linux/arm64 from
// the static binaries `make build` makes, written as an OCI image-layout
// tarball (oci-layout, index.json and blobs/ at its root) that `kind load
// image-archive` and `crane push` accept, and pushes it to a registry.
// Layers, configs, manifests, the index and the layout come from
// github.com/google/go-containerregistry; only the layer's few files are
// put in a tar with archive/tar.
//
//	ocibuild build -out bin/x.oci.tar -version v1 -revision abc -created 1700000000 \
//	    -binary linux/amd64=bin/linux-amd64/nfs-subdir-provisioner -binary linux/arm64=...
//	ocibuild push -layout bin/x.oci.tar -ref 127.0.0.1:5000/nfs-subdir-provisioner:v1 [-insecure]
//
// It also builds the real test node's images from this machine's own files (Debian's
// redis-server, busybox-static), each with the libraries it needs:
//
//	ocibuild files -out redis.oci.tar -name nfsp.local/redis:7 -user 999:999 \
//	    -file /usr/bin/redis-server -file /usr/bin/redis-cli -entrypoint /usr/bin/redis-server
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ocibuild build|push [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = runBuild(os.Args[2:])
	case "push":
		err = runPush(os.Args[2:])
	case "files":
		err = runFiles(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: want build, push or files", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ocibuild:", err)
		os.Exit(1)
	}
}

type binaries map[string]string // "linux/amd64" → path

func (b binaries) String() string { return fmt.Sprint(map[string]string(b)) }
func (b binaries) Set(v string) error {
	platform, path, ok := strings.Cut(v, "=")
	if !ok || !strings.Contains(platform, "/") {
		return errors.New("want os/arch=path")
	}
	b[platform] = path
	return nil
}

func runBuild(args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	spec := Spec{Binaries: binaries{}}
	var out string
	var created int64
	fs.StringVar(&out, "out", "", "OCI image-layout tarball to write")
	fs.StringVar(&spec.Version, "version", "dev", "image version (label org.opencontainers.image.version)")
	fs.StringVar(&spec.Name, "name", "ghcr.io/nfs-subdir/nfs-subdir-provisioner", "repository the layout names the image by (name:version), for kind load image-archive")
	fs.StringVar(&spec.Revision, "revision", "", "source revision (label org.opencontainers.image.revision)")
	fs.StringVar(&spec.Source, "source", "https://github.com/nfs-subdir/nfs-subdir-provisioner", "source repository (label org.opencontainers.image.source)")
	fs.Int64Var(&created, "created", 0, "creation time, Unix seconds (SOURCE_DATE_EPOCH): the same input gives the same digest")
	fs.Var(spec.Binaries.(binaries), "binary", "os/arch=path of a static binary; repeat per platform")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if out == "" || len(spec.Binaries.(binaries)) == 0 {
		return errors.New("build needs -out and at least one -binary")
	}
	spec.Created = time.Unix(created, 0).UTC()
	digest, err := WriteLayout(spec, out)
	if err != nil {
		return err
	}
	fmt.Printf("%s %s\n", out, digest)
	return nil
}

// strings is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func runFiles(args []string) error {
	fs := flag.NewFlagSet("files", flag.ContinueOnError)
	var spec FilesSpec
	var out string
	var created int64
	fs.StringVar(&out, "out", "", "OCI image-layout tarball to write")
	fs.StringVar(&spec.Name, "name", "", "the image's full reference (repository:tag)")
	fs.StringVar(&spec.User, "user", "", "uid:gid the image runs as")
	fs.Int64Var(&created, "created", 0, "creation time, Unix seconds")
	fs.Var((*stringList)(&spec.Files), "file", "absolute path of a file of this machine to put at the same path (its libraries follow); repeat")
	fs.Var((*stringList)(&spec.Links), "link", "/path=target symbolic link; repeat")
	fs.Var((*stringList)(&spec.Dirs), "dir", "empty directory; repeat")
	fs.Var((*stringList)(&spec.Entrypoint), "entrypoint", "entrypoint argument; repeat")
	fs.Var((*stringList)(&spec.Cmd), "cmd", "default argument; repeat")
	fs.Var((*stringList)(&spec.Env), "env", "NAME=value; repeat")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if out == "" || spec.Name == "" || len(spec.Files) == 0 {
		return errors.New("files needs -out, -name and at least one -file")
	}
	spec.Created = time.Unix(created, 0).UTC()
	digest, err := WriteFilesLayout(spec, out)
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n", out, spec.Name, digest)
	return nil
}

func runPush(args []string) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	var layoutTar, ref string
	var insecure bool
	fs.StringVar(&layoutTar, "layout", "", "OCI image-layout tarball (from build)")
	fs.StringVar(&ref, "ref", "", "where to push, host/repo:tag")
	fs.BoolVar(&insecure, "insecure", false, "plain HTTP (a registry on 127.0.0.1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if layoutTar == "" || ref == "" {
		return errors.New("push needs -layout and -ref")
	}
	digest, err := Push(layoutTar, ref, insecure)
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s\n", ref, digest)
	return nil
}
