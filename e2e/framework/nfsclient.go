//go:build e2e

package framework

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
)

// NFSVolume is a PV's directory reached over NFSv3 the way kubelet would mount it: MOUNT of
// spec.nfs.path on spec.nfs.server. The walkthrough uses it in place of redis writing to /data.
type NFSVolume struct {
	mount  *nfs.Mount
	target *nfs.Target
}

// MountNFSVolume mounts server:path as root (AUTH_SYS 0:0).
func MountNFSVolume(server, path string) (*NFSVolume, error) {
	mount, err := nfs.DialMount(server, time.Second)
	if err != nil {
		return nil, fmt.Errorf("dialing MOUNT on %s: %w", server, err)
	}
	target, err := mount.Mount(path, rpc.NewAuthUnix("nfsp-e2e", 0, 0).Auth())
	if err != nil {
		mount.Close()
		return nil, fmt.Errorf("mounting %s:%s: %w", server, path, err)
	}
	return &NFSVolume{mount: mount, target: target}, nil
}

// WriteFile creates (or truncates) name and writes content.
func (v *NFSVolume) WriteFile(name, content string) error {
	file, err := v.target.OpenFile(name, 0o644)
	if err != nil {
		return fmt.Errorf("creating %s over NFS: %w", name, err)
	}
	if _, err := file.Write([]byte(content)); err != nil {
		file.Close()
		return fmt.Errorf("writing %s over NFS: %w", name, err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("closing %s over NFS: %w", name, err)
	}
	return nil
}

// ReadFile is the content of name.
func (v *NFSVolume) ReadFile(name string) (string, error) {
	file, err := v.target.Open(name)
	if err != nil {
		return "", fmt.Errorf("opening %s over NFS: %w", name, err)
	}
	defer file.Close()
	content, err := io.ReadAll(file)
	if err != nil {
		return "", fmt.Errorf("reading %s over NFS: %w", name, err)
	}
	return string(content), nil
}

// Close unmounts.
func (v *NFSVolume) Close() {
	v.target.Close()
	if err := v.mount.Unmount(); err != nil {
		fmt.Fprintln(os.Stderr, "unmounting:", err)
	}
	v.mount.Close()
}
