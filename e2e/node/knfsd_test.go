//go:build e2e

package node

import (
	"context"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// Linux's own NFS server (nfs-kernel-server in the node VM), the one most users run, with the
// provisioner's pod on the node so that its source ports are real:
//   - /srv/nfs/insecure (insecure,no_root_squash): provision, a pod and redis write, clone, archive, delete;
//   - /srv/nfs/default with exportfs's defaults (secure,root_squash): the chart's defaults work
//     (the provisioner binds a reserved port where the runtime lets it, as containerd 2 does), and
//     a provisioner told never to (--privileged-port=false) gets an Event naming the setting.
func TestKnfsd(t *testing.T) {
	if node.KnfsdServer == "" {
		// kind's nodes have none; the bed's VM always has (make test requires it).
		if os.Getenv("NFSP_REQUIRE_KNFSD") == "1" {
			t.Fatal("NFSP_REQUIRE_KNFSD=1 but E2E_NODE_KNFSD_SERVER is not set: the node has no Linux NFS server")
		}
		t.Skip("E2E_NODE_KNFSD_SERVER is not set: this node has no Linux NFS server")
	}
	r := mainRelease(t)
	uid, gid := strconv.FormatUint(uint64(fw.Env.SquashExportUID), 10), strconv.FormatUint(uint64(fw.Env.SquashExportGID), 10)

	t.Run("insecure,no_root_squash", func(t *testing.T) {
		share := "/srv/nfs/insecure"
		class := fw.CreateClass(t, framework.ClassOptions{Provisioner: r.ProvisionerName, Parameters: map[string]string{"server": node.KnfsdServer, "share": share}})
		ns := fw.CreateNamespace(t, "knfsd")
		fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "data", Class: class.Name})
		_, pv := fw.WaitClaimBound(t, ns, "data")
		dir := pv.Spec.NFS.Path
		if pv.Spec.NFS.Server != node.KnfsdServer || path.Dir(dir) != share {
			t.Fatalf("PV source %s:%s, want a directory of %s:%s", pv.Spec.NFS.Server, dir, node.KnfsdServer, share)
		}
		if ok, out := fw.RunPod(t, node.ShellPod(ns, "writer", "data", 1000, "echo on-knfsd > /data/f")); !ok {
			t.Fatalf("a pod writing to its knfsd volume: %s", out)
		}
		if got := nodeFile(t, path.Join(dir, "f")); got != "on-knfsd\n" {
			t.Fatalf("the file on knfsd's export: %q", got)
		}
		// redis itself on the knfsd volume, as in the walkthrough.
		redis := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "redis", Namespace: ns},
			Spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(999)), RunAsGroup: ptr.To(int64(999))},
				Containers: []corev1.Container{{
					Name: "redis", Image: node.RedisImage, ImagePullPolicy: corev1.PullNever,
					Args:         []string{"--dir", "/data", "--appendonly", "no"},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
				}},
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
			},
		}
		node.OnNode(&redis.Spec)
		if _, err := fw.Cluster.Clientset.CoreV1().Pods(ns).Create(framework.Context(t), redis, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		fw.WaitPodReady(t, ns, "redis")
		redisCLI(t, ns, "redis", "OK", "SET", "on", "knfsd-by-redis")
		redisCLI(t, ns, "redis", "OK", "SAVE")
		if got := nodeFile(t, path.Join(dir, "dump.rdb")); !strings.Contains(got, "knfsd-by-redis") {
			t.Errorf("redis's dump.rdb on knfsd's export lacks the value (%d bytes)", len(got))
		}
		if err := fw.Cluster.Clientset.CoreV1().Pods(ns).Delete(framework.Context(t), "redis", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
			t.Fatal(err)
		}
		fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "copy", Class: class.Name, DataSource: &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "data"}})
		fw.WaitClaimBound(t, ns, "copy")
		if ok, out := fw.RunPod(t, node.ShellPod(ns, "reader", "copy", 1000, "cat /data/f")); !ok || strings.TrimSpace(out) != "on-knfsd" {
			t.Errorf("the clone's pod reading the copy: ok=%v %q", ok, out)
		}
		fw.DeleteClaim(t, ns, "data")
		fw.WaitVolumeGone(t, pv.Name)
		if got := nodeFile(t, path.Join(share, "archived-"+path.Base(dir), "f")); got != "on-knfsd\n" {
			t.Errorf("the archived file on knfsd's export: %q", got)
		}
		deleting := fw.CreateClass(t, framework.ClassOptions{Provisioner: r.ProvisionerName, Parameters: map[string]string{"server": node.KnfsdServer, "share": share, "onDelete": "delete"}})
		fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "gone", Class: deleting.Name})
		_, gonePV := fw.WaitClaimBound(t, ns, "gone")
		if ok, out := fw.RunPod(t, node.ShellPod(ns, "filler", "gone", 1000, "mkdir -p /data/a/b && echo x > /data/a/b/c")); !ok {
			t.Fatalf("filling the volume: %s", out)
		}
		fw.DeleteClaim(t, ns, "gone")
		fw.WaitVolumeGone(t, gonePV.Name)
		if out, err := node.Run(framework.Context(t), "test ! -e "+framework.ShellQuote(gonePV.Spec.NFS.Path)); err != nil {
			t.Errorf("onDelete=delete left %s on knfsd: %v %s", gonePV.Spec.NFS.Path, err, out)
		}
	})

	// NFSv4.1 against knfsd, a second server independent of Ganesha: the class says it as an EFS
	// user's does (mountOptions nfsvers=4.1), the provisioner makes the directory over v4.1 with
	// owner and mode in the CREATE, the pod's kubelet mounts it over v4.1 (its /proc/mounts says
	// so) and writes, and the archive on delete is a v4.1 RENAME (waiting out knfsd's grace
	// period when the node has just booted).
	t.Run("NFSv4.1 on insecure,no_root_squash", func(t *testing.T) {
		share := "/srv/nfs/insecure"
		class := fw.CreateClass(t, framework.ClassOptions{Provisioner: r.ProvisionerName, MountOptions: []string{"nfsvers=4.1"},
			Parameters: map[string]string{"server": node.KnfsdServer, "share": share, "uid": "1000", "gid": "1000", "mode": "0750"}})
		ns := fw.CreateNamespace(t, "knfsd-v41")
		fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "data", Class: class.Name})
		_, pv := fw.WaitClaimBound(t, ns, "data")
		dir := pv.Spec.NFS.Path
		if out, err := node.Run(framework.Context(t), "stat -c '%u:%g %a' "+framework.ShellQuote(dir)); err != nil || strings.TrimSpace(out) != "1000:1000 750" {
			t.Errorf("the directory made over NFSv4.1 on knfsd: %q %v, want 1000:1000 750", out, err)
		}
		if ok, out := fw.RunPod(t, node.ShellPod(ns, "writer", "data", 1000, "echo over-v41 > /data/f && grep ' /data ' /proc/mounts")); !ok {
			t.Fatalf("a pod writing to its NFSv4.1 volume: %s", out)
		} else if !strings.Contains(out, " nfs4 ") || !strings.Contains(out, "vers=4.1") {
			t.Errorf("the pod's mount is not NFSv4.1: %s", out)
		}
		if got := nodeFile(t, path.Join(dir, "f")); got != "over-v41\n" {
			t.Fatalf("the file on knfsd's export: %q", got)
		}
		fw.DeleteClaim(t, ns, "data")
		fw.WaitVolumeGone(t, pv.Name)
		if got := nodeFile(t, path.Join(share, "archived-"+path.Base(dir), "f")); got != "over-v41\n" {
			t.Errorf("the archived file on knfsd's export: %q", got)
		}
	})

	t.Run("secure,root_squash with the chart's defaults", func(t *testing.T) {
		class := fw.CreateClass(t, framework.ClassOptions{Provisioner: r.ProvisionerName, Parameters: map[string]string{
			"server": node.KnfsdServer, "share": "/srv/nfs/default", "uid": uid, "gid": gid, "mode": "0770",
		}})
		ns := fw.CreateNamespace(t, "knfsd-secure")
		fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "data", Class: class.Name})
		_, pv := fw.WaitClaimBound(t, ns, "data")
		if ok, out := fw.RunPod(t, node.ShellPod(ns, "owner", "data", int64(fw.Env.SquashExportUID), "echo secure > /data/f")); !ok {
			t.Fatalf("the owner's pod on the secure export: %s", out)
		}
		if got := nodeFile(t, path.Join(pv.Spec.NFS.Path, "f")); got != "secure\n" {
			t.Errorf("the file on knfsd's secure export: %q", got)
		}
	})

	t.Run("secure with an unreserved source port", func(t *testing.T) {
		unreserved := release{Name: "nfsp-unreserved", Namespace: "nfsp-node-unreserved", Class: "nfs-node-unreserved", ProvisionerName: "nfsp.node/unreserved"}
		unreserved.install(t, "--set-json", `extraArgs=["--privileged-port=false"]`)
		t.Cleanup(func() { _ = unreserved.uninstall(context.Background()) })
		unreserved.pod(t)
		class := fw.CreateClass(t, framework.ClassOptions{Provisioner: unreserved.ProvisionerName, Parameters: map[string]string{
			"server": node.KnfsdServer, "share": "/srv/nfs/default", "uid": uid, "gid": gid,
		}})
		ns := fw.CreateNamespace(t, "knfsd-unreserved")
		claim := fw.CreateClaim(t, ns, framework.ClaimOptions{Name: "data", Class: class.Name})
		fw.WaitWarningEvent(t, claim, framework.FailureReason, "MNT3ERR_ACCES", "nfs.privilegedPort")
		fw.AssertNoVolumeForClaim(t, claim)
	})
}

// nodeFile is a file of the node's own file system (knfsd's exports are there, not on the machine).
func nodeFile(t *testing.T, name string) string {
	t.Helper()
	out, err := node.Run(framework.Context(t), "cat "+framework.ShellQuote(name))
	if err != nil {
		t.Fatalf("reading %s on the node: %v", name, err)
	}
	return out
}
