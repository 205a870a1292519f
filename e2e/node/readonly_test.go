//go:build e2e

package node

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// The node is a real kubelet with a real runtime (not kwok's stand-in), Ready, of the bed's
// Kubernetes version.
func TestNodeIsReal(t *testing.T) {
	ctx := framework.Context(t)
	n, err := fw.Cluster.Clientset.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	server, err := fw.Cluster.Clientset.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	info := n.Status.NodeInfo
	if info.KubeletVersion != server.GitVersion || !strings.HasPrefix(info.ContainerRuntimeVersion, "containerd://") || info.KernelVersion == "" {
		t.Errorf("node %s: kubelet %q (server %q), runtime %q, kernel %q; want a real kubelet and containerd", node.Name, info.KubeletVersion, server.GitVersion, info.ContainerRuntimeVersion, info.KernelVersion)
	}
	ready := false
	for _, c := range n.Status.Conditions {
		ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
	}
	if !ready {
		t.Errorf("node %s is not Ready: %v", node.Name, n.Status.Conditions)
	}
}

// A ReadOnlyMany claim's volume is mounted read-only in its pod: the PV says nfs.readOnly, and the
// kernel refuses the pod's write.
func TestReadOnlyManyIsReadOnlyInThePod(t *testing.T) {
	r := mainRelease(t)
	ctx := framework.Context(t)
	ns := fw.CreateNamespace(t, "node-rox")
	claim := framework.NewClaim(ns, framework.ClaimOptions{Name: "shared", Class: r.Class})
	claim.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany}
	if _, err := fw.Cluster.Clientset.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, pv := fw.WaitClaimBound(t, ns, "shared")
	if !pv.Spec.NFS.ReadOnly {
		t.Fatalf("PV %s of a ReadOnlyMany claim: nfs.readOnly false", pv.Name)
	}
	ok, out := fw.RunPod(t, node.ShellPod(ns, "writer", "shared", 1000, "grep ' /data ' /proc/mounts; touch /data/x"))
	if ok || !strings.Contains(out, "Read-only file system") {
		t.Errorf("a write to a ReadOnlyMany volume: ok=%v %q, want Read-only file system", ok, out)
	}
	if fields := strings.Fields(out); len(fields) < 4 || !strings.HasPrefix(fields[3], "ro,") {
		t.Errorf("the pod's mount %q, want ro", out)
	}
}
