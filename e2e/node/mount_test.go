//go:build e2e

package node

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// The class's mountOptions are what the kernel mounted the pod's volume with.
func TestMountOptionsReachThePod(t *testing.T) {
	r := mainRelease(t)
	ns := fw.CreateNamespace(t, "node-mount")
	fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "data", Class: r.Class})
	_, pv := fw.WaitClaimBound(t, ns, "data")
	ok, out := fw.RunPod(t, node.ShellPod(ns, "mounts", "data", 1000, "grep ' /data ' /proc/mounts"))
	if !ok {
		t.Fatalf("pod reading /proc/mounts failed: %s", out)
	}
	fields := strings.Fields(out)
	if len(fields) < 4 || fields[0] != node.NFSServer+":"+pv.Spec.NFS.Path || fields[2] != "nfs" {
		t.Fatalf("the pod's /data mount: %q, want %s:%s of type nfs", out, node.NFSServer, pv.Spec.NFS.Path)
	}
	options := strings.Split(fields[3], ",")
	for _, want := range []string{"vers=3", "noatime", "nolock"} {
		if !contains(options, want) {
			t.Errorf("mount options %v lack %s (the class says nfsvers=3,noatime,nolock)", options, want)
		}
	}
}

// On the root_squash export the directory belongs to the uid the class names: a pod running as
// it writes, a pod of another uid is refused by the server.
func TestRootSquashOwnerWritesOthersAreRefused(t *testing.T) {
	r := mainRelease(t)
	uid, gid := fw.Env.SquashExportUID, fw.Env.SquashExportGID
	class := fw.CreateClass(t, framework.ClassOptions{Provisioner: r.ProvisionerName, Parameters: map[string]string{
		"server": node.NFSServer, "share": fw.Env.SquashNFSPath,
		"uid": strconv.FormatUint(uint64(uid), 10), "gid": strconv.FormatUint(uint64(gid), 10), "mode": "0770",
	}})
	ns := fw.CreateNamespace(t, "node-squash")
	fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "data", Class: class.Name})
	_, pv := fw.WaitClaimBound(t, ns, "data")
	dir := fw.SquashExport().VolumeDir(t, pv)

	ok, out := fw.RunPod(t, node.ShellPod(ns, "owner", "data", int64(uid), "echo from-the-owner > /data/owned && cat /data/owned"))
	if !ok || strings.TrimSpace(out) != "from-the-owner" {
		t.Fatalf("the owner's pod (uid %d): ok=%v %q", uid, ok, out)
	}
	framework.AssertFileContent(t, filepath.Join(dir, "owned"), "from-the-owner\n")
	ok, out = fw.RunPod(t, node.ShellPod(ns, "stranger", "data", 4321, "echo intruder > /data/intruder"))
	if ok || !strings.Contains(out, "Permission denied") {
		t.Errorf("a pod of uid 4321: ok=%v %q, want Permission denied", ok, out)
	}
	framework.AssertNotExists(t, filepath.Join(dir, "intruder"))
}

// A clone's files keep their owner and mode, so the clone's pod, running as the source's uid,
// reads a file only its owner may read.
func TestCloneReadableByItsPod(t *testing.T) {
	r := mainRelease(t)
	ns := fw.CreateNamespace(t, "node-clone")
	fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "src", Class: r.Class})
	fw.WaitClaimBound(t, ns, "src")
	ok, out := fw.RunPod(t, node.ShellPod(ns, "writer", "src", 1234, "mkdir /data/d && echo secret-of-1234 > /data/d/f && chmod 0600 /data/d/f && chmod 0700 /data/d"))
	if !ok {
		t.Fatalf("writing the source: %s", out)
	}
	fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "copy", Class: r.Class, DataSource: &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "src"}})
	fw.WaitClaimBound(t, ns, "copy")
	ok, out = fw.RunPod(t, node.ShellPod(ns, "reader", "copy", 1234, "cat /data/d/f"))
	if !ok || strings.TrimSpace(out) != "secret-of-1234" {
		t.Errorf("the clone's pod (uid 1234) reading the copied file: ok=%v %q", ok, out)
	}
	ok, out = fw.RunPod(t, node.ShellPod(ns, "other", "copy", 4321, "cat /data/d/f"))
	if ok {
		t.Errorf("a pod of another uid read the clone's 0600 file: %q", out)
	}
}

// A pod using its claim keeps running, and writing, while the provisioner's pod is replaced.
func TestClaimSurvivesProvisionerRestart(t *testing.T) {
	r := mainRelease(t)
	ctx := framework.Context(t)
	ns := fw.CreateNamespace(t, "node-restart")
	fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "data", Class: r.Class})
	_, pv := fw.WaitClaimBound(t, ns, "data")
	dir := fw.DefaultExport().VolumeDir(t, pv)
	user := node.ShellPod(ns, "user", "data", 1000, "echo before > /data/before; exec sleep 100000")
	if _, err := fw.Cluster.Clientset.CoreV1().Pods(ns).Create(ctx, user, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := fw.WaitPodReady(t, ns, "user")
	framework.AssertFileContent(t, filepath.Join(dir, "before"), "before\n")

	old := r.pod(t)
	if err := fw.Cluster.Clientset.CoreV1().Pods(r.Namespace).Delete(ctx, old.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
		t.Fatal(err)
	}
	framework.Poll(t, "a new provisioner pod Ready", framework.PodTimeout, func(ctx context.Context) (bool, error) {
		p := r.currentPod(ctx)
		if p == nil || p.UID == old.UID || !framework.PodReady(p) {
			return false, fmt.Errorf("not replaced yet")
		}
		return true, nil
	})
	now, err := fw.Cluster.Clientset.CoreV1().Pods(ns).Get(ctx, "user", metav1.GetOptions{})
	if err != nil || now.UID != running.UID || !framework.PodReady(now) || now.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Fatalf("the claim's pod after the provisioner restart: %v %v", now.Status, err)
	}
	if _, err := node.InContainer(ctx, ns, "user", "sh", "sh", "-c", "echo after > /data/after"); err != nil {
		t.Fatal(err)
	}
	framework.AssertFileContent(t, filepath.Join(dir, "after"), "after\n")
	fresh, err := fw.Cluster.Clientset.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
	if err != nil || fresh.Status.Phase != corev1.VolumeBound {
		t.Errorf("PV %s after the restart: %v %v", pv.Name, fresh.Status.Phase, err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
