//go:build e2e

package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

const (
	redisSet   = "redis-pv-sts"
	redisClaim = "redis-100m-pvc"
	redisValue = "written-by-redis-on-a-real-node"
)

// The seed walkthrough for real: deploy/examples' redis StatefulSet on class nfs-client, redis
// itself writing through the kernel's NFS client; the file is on the export, a replaced pod
// reads it back from the same claim, and the claim's deletion archives it.
func TestRedisWalkthrough(t *testing.T) {
	r := mainRelease(t)
	ctx := framework.Context(t)
	ns := fw.CreateNamespace(t, "node-redis")
	manifest := filepath.Join(fw.Env.RepoRoot, "deploy", "examples", "redis-statefulset.yaml")
	if _, err := fw.Cluster.ApplyManifestFileWith(ctx, manifest, ns, onNode); err != nil {
		t.Fatal(err)
	}
	pod0, pod1 := redisSet+"-0", redisSet+"-1"
	first := fw.WaitPodReady(t, ns, pod0)
	fw.WaitPodReady(t, ns, pod1)

	claim, pv := fw.WaitClaimBound(t, ns, redisClaim+"-"+pod0)
	if *claim.Spec.StorageClassName != r.Class {
		t.Fatalf("claim of class %q, want %q", *claim.Spec.StorageClassName, r.Class)
	}
	dir := fw.DefaultExport().VolumeDir(t, pv)
	mounts, err := node.Run(ctx, "grep "+framework.ShellQuote(pv.Spec.NFS.Path)+" /proc/mounts")
	if err != nil || !strings.Contains(mounts, node.NFSServer+":"+pv.Spec.NFS.Path+" ") || !strings.Contains(mounts, " nfs ") {
		t.Fatalf("the node's mounts of %s: %q %v, want the kubelet's NFS mount of it", pv.Spec.NFS.Path, mounts, err)
	}

	redisCLI(t, ns, pod0, "OK", "SET", "greeting", redisValue)
	redisCLI(t, ns, pod0, "OK", "SAVE")
	data, err := os.ReadFile(filepath.Join(dir, "dump.rdb"))
	if err != nil || !strings.Contains(string(data), redisValue) {
		t.Fatalf("dump.rdb on the export (%s): %v; holds the value: %v", dir, err, strings.Contains(string(data), redisValue))
	}

	// Pod 0 goes; the StatefulSet brings it back on the same claim, which still holds the value.
	if err := fw.Cluster.Clientset.CoreV1().Pods(ns).Delete(ctx, pod0, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Poll(t, "pod 0 replaced", framework.PodTimeout, func(ctx context.Context) (bool, error) {
		p, err := fw.Cluster.Clientset.CoreV1().Pods(ns).Get(ctx, pod0, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.UID != first.UID, nil
	})
	fw.WaitPodReady(t, ns, pod0)
	redisCLI(t, ns, pod0, redisValue, "GET", "greeting")

	// Scaled to 0 and its claim deleted, the directory is archived with what redis wrote.
	scale := []byte(`{"spec":{"replicas":0}}`)
	if _, err := fw.Cluster.Clientset.AppsV1().StatefulSets(ns).Patch(ctx, redisSet, types.MergePatchType, scale, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Poll(t, "the redis pods gone", framework.PodTimeout, func(ctx context.Context) (bool, error) {
		pods, err := fw.Cluster.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + redisSet})
		if err != nil {
			return false, err
		}
		return len(pods.Items) == 0, fmt.Errorf("%d pods left", len(pods.Items))
	})
	fw.DeleteClaim(t, ns, claim.Name)
	fw.WaitVolumeGone(t, pv.Name)
	archived := filepath.Join(filepath.Dir(dir), "archived-"+filepath.Base(dir))
	framework.AssertExists(t, filepath.Join(archived, "dump.rdb"))
	framework.AssertNotExists(t, dir)
}

func redisCLI(t *testing.T, ns, pod, want string, args ...string) {
	t.Helper()
	out, err := node.InContainer(framework.Context(t), ns, pod, "redis", append([]string{"redis-cli"}, args...)...)
	if err != nil || strings.TrimSpace(out) != want {
		t.Fatalf("redis-cli %s in %s/%s: %q %v, want %q", strings.Join(args, " "), ns, pod, out, err, want)
	}
}

// onNode edits the walkthrough's objects for the node: its StatefulSet's pods run the imported
// redis image (as redis's uid, 999) on the real node; everything else is the file as users have it.
func onNode(object *unstructured.Unstructured) error {
	if object.GetKind() != "StatefulSet" {
		return nil
	}
	var set appsv1.StatefulSet
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(object.Object, &set); err != nil {
		return err
	}
	spec := &set.Spec.Template.Spec
	for i := range spec.Containers {
		spec.Containers[i].Image = node.RedisImage
		spec.Containers[i].ImagePullPolicy = corev1.PullNever
	}
	spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(999)), RunAsGroup: ptr.To(int64(999))}
	node.OnNode(spec)
	edited, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&set)
	if err != nil {
		return err
	}
	object.Object = edited
	return nil
}
