//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
)

// nfsVolume is a PV's directory reached over NFSv3 the way kubelet would mount it: MOUNT of
// spec.nfs.path on spec.nfs.server. The walkthrough uses it in place of redis writing to /data.
type nfsVolume struct {
	mount  *nfs.Mount
	target *nfs.Target
}

func mountNFSVolume(server, path string) (*nfsVolume, error) {
	mount, err := nfs.DialMount(server, time.Second)
	if err != nil {
		return nil, fmt.Errorf("dialing MOUNT on %s: %w", server, err)
	}
	target, err := mount.Mount(path, rpc.NewAuthUnix("nfsp-e2e", 0, 0).Auth())
	if err != nil {
		mount.Close()
		return nil, fmt.Errorf("mounting %s:%s: %w", server, path, err)
	}
	return &nfsVolume{mount: mount, target: target}, nil
}

func (v *nfsVolume) writeFile(name, content string) error {
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

func (v *nfsVolume) readFile(name string) (string, error) {
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

func (v *nfsVolume) close() {
	v.target.Close()
	if err := v.mount.Unmount(); err != nil {
		fmt.Fprintln(os.Stderr, "unmounting:", err)
	}
	v.mount.Close()
}
