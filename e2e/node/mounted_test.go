//go:build e2e

package node

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// The mounted backend (backend.type=mounted, the anchor's way): the kubelet mounts the export into
// the provisioner's pod, which provisions and archives through that mount. It runs as root (it
// must act on a root-owned export through the kernel), so its namespace is at the baseline level.
func TestMountedBackendOnTheNode(t *testing.T) {
	r := release{Name: "nfsp-mounted", Namespace: "nfsp-node-mounted", Class: "nfs-node-mounted", ProvisionerName: "nfsp.node/mounted"}
	r.installAt(t, "baseline", "--set", "backend.type=mounted")
	t.Cleanup(func() { _ = r.uninstall(context.Background()) })
	pod := r.pod(t)
	// The export is the kubelet's NFS mount in the provisioner's container.
	mounts, err := node.InContainer(framework.Context(t), r.Namespace, pod.Name, "provisioner", "/nfs-subdir-provisioner", "--version")
	if err != nil || !strings.Contains(mounts, "nfs-subdir-provisioner") {
		t.Fatalf("the binary in the mounted backend's pod: %q %v", mounts, err)
	}
	// nfs or nfs4: with no nfsvers in its mount options the kernel takes the newest version the
	// server has (the bed's Ganesha serves NFSv4.1 too).
	kubeletMounts, err := node.Run(framework.Context(t), "grep -E ' nfs4? ' /proc/mounts")
	if err != nil || !strings.Contains(kubeletMounts, node.NFSServer+":"+fw.Env.NFSPath+" ") {
		t.Fatalf("the node's NFS mounts: %q %v, want the export %s:%s mounted for the provisioner's pod", kubeletMounts, err, node.NFSServer, fw.Env.NFSPath)
	}

	ns := fw.CreateNamespace(t, "node-mounted")
	fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "data", Class: r.Class})
	_, pv := fw.WaitClaimBound(t, ns, "data")
	dir := fw.DefaultExport().VolumeDir(t, pv)
	if want := ns + "-data-" + pv.Name; filepath.Base(dir) != want {
		t.Errorf("directory %s, want %s", filepath.Base(dir), want)
	}
	ok, out := fw.RunPod(t, node.ShellPod(ns, "writer", "data", 1000, "echo through-the-mounted-backend > /data/f"))
	if !ok {
		t.Fatalf("a pod writing to the mounted backend's volume: %s", out)
	}
	framework.AssertFileContent(t, filepath.Join(dir, "f"), "through-the-mounted-backend\n")
	fw.DeleteClaim(t, ns, "data")
	fw.WaitVolumeGone(t, pv.Name)
	framework.AssertExists(t, filepath.Join(filepath.Dir(dir), "archived-"+filepath.Base(dir), "f"))
}
