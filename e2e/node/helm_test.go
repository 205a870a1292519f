//go:build e2e

package node

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// ProbeTimeout bounds how long the readiness probe takes to see a change: the chart's probe
// runs every 10 s and needs 3 failures; the pod's status then goes through the kubelet.
const probeTimeout = 3 * time.Minute

// The chart, installed with helm into a restricted namespace, runs the image imported into the
// node's containerd as a pod on the real node; its readiness follows the NFS server.
func TestChartRunsOnTheRealNode(t *testing.T) {
	r := mainRelease(t)
	pod := r.pod(t)
	if pod.Spec.NodeName != node.Name {
		t.Errorf("provisioner pod on node %q, want the real node %q", pod.Spec.NodeName, node.Name)
	}
	if got := pod.Spec.Containers[0].Image; got != node.ProvisionerImage {
		t.Errorf("provisioner image %q, want the imported %q", got, node.ProvisionerImage)
	}
	if s := pod.Status.ContainerStatuses; len(s) != 1 || s[0].ImageID == "" || s[0].State.Running == nil {
		t.Errorf("container status %+v, want one running container of a resolved image", s)
	}
	ns, err := fw.Cluster.Clientset.CoreV1().Namespaces().Get(framework.Context(t), r.Namespace, metav1.GetOptions{})
	if err != nil || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Fatalf("namespace %s: %v %v, want enforce=restricted", r.Namespace, ns.Labels, err)
	}

	// Ganesha goes away: /readyz fails, the pod stops being Ready; it comes back: Ready again.
	runShell(t, fw.Env.NFSStopCommand)
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			runShell(t, fw.Env.NFSStartCommand)
		}
	})
	waitReady(t, r.Namespace, pod.Name, false)
	runShell(t, fw.Env.NFSStartCommand)
	restarted = true
	waitReady(t, r.Namespace, pod.Name, true)
}

// helm upgrade changes a running release (a values change rolls the pod), and helm uninstall
// removes all of it but the volumes. (A StorageClass's parameters are immutable: an upgrade that
// changes them is refused by the API server; the chart README says so.)
func TestHelmUpgradeAndUninstall(t *testing.T) {
	r := release{Name: "nfsp-upgrade", Namespace: "nfsp-node-upgrade", Class: "nfs-node-upgrade", ProvisionerName: "nfsp.node/upgrade"}
	r.install(t)
	t.Cleanup(func() { _ = r.uninstall(context.Background()) })
	before := r.pod(t)
	ctx := framework.Context(t)
	args := append([]string{"upgrade", r.Name, chartDir(), "--namespace", r.Namespace}, r.values()...)
	if _, err := runHelm(ctx, append(args, "--set", "logVerbosity=4")...); err != nil {
		t.Fatal(err)
	}
	framework.Poll(t, "the upgraded pod", framework.PodTimeout, func(ctx context.Context) (bool, error) {
		p := r.currentPod(ctx)
		if p == nil || p.UID == before.UID || !framework.PodReady(p) {
			return false, fmt.Errorf("pod %v not yet replaced and Ready", p != nil && p.UID == before.UID)
		}
		if !strings.Contains(strings.Join(p.Spec.Containers[0].Args, " "), "--v=4") {
			return true, fmt.Errorf("upgraded pod's args %v lack --v=4", p.Spec.Containers[0].Args)
		}
		return true, nil
	})
	if out, err := runHelm(ctx, "history", r.Name, "--namespace", r.Namespace); err != nil || !strings.Contains(out, "Upgrade complete") {
		t.Errorf("helm history after the upgrade: %v\n%s", err, out)
	}
	if _, err := runHelm(ctx, "uninstall", r.Name, "--namespace", r.Namespace, "--wait", "--timeout", "3m"); err != nil {
		t.Fatal(err)
	}
	framework.Poll(t, "the release's objects gone", framework.DeleteTimeout, func(ctx context.Context) (bool, error) {
		deps, err := fw.Cluster.Clientset.AppsV1().Deployments(r.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + r.Name})
		if err != nil || len(deps.Items) > 0 {
			return false, fmt.Errorf("%d deployments left (%v)", len(deps.Items), err)
		}
		if _, err := fw.Cluster.Clientset.StorageV1().StorageClasses().Get(ctx, r.Class, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("class %s: %v", r.Class, err)
		}
		return true, nil
	})
}

func (r release) currentPod(ctx context.Context) *corev1.Pod {
	pods, err := fw.Cluster.Clientset.CoreV1().Pods(r.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + r.Name})
	if err != nil {
		return nil
	}
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp == nil {
			return &pods.Items[i]
		}
	}
	return nil
}

func waitReady(t *testing.T, namespace, name string, want bool) {
	t.Helper()
	framework.Poll(t, fmt.Sprintf("pod %s/%s Ready=%v", namespace, name, want), probeTimeout, func(ctx context.Context) (bool, error) {
		p, err := fw.Cluster.Clientset.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return framework.PodReady(p) == want, fmt.Errorf("Ready=%v", framework.PodReady(p))
	})
}

func runShell(t *testing.T, command string) {
	t.Helper()
	if out, err := exec.Command("sh", "-c", command).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
}
