//go:build e2e

// Package node is the e2e suite of what only a real node shows: the chart installed with helm
// runs the image as a pod, and pods mount the volumes through a real kubelet and the kernel's
// NFS client. It runs wherever a real node is: the test bed's VM (make node-up) or a kind worker
// (e2e/kind/run.sh); both describe the node in E2E_NODE_* variables (framework.LoadNode).
package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

var (
	fw   *framework.Framework
	node framework.Node
	helm string
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	fw = framework.MustNew()
	var ok bool
	var err error
	node, ok, err = framework.LoadNode()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		return 1
	}
	if !ok {
		if os.Getenv("NFSP_REQUIRE_NODE") == "1" {
			fmt.Fprintln(os.Stderr, "e2e setup: NFSP_REQUIRE_NODE=1 but there is no real node (make node-up, or set E2E_NODE_*)")
			return 1
		}
		fmt.Println("e2e/node: no real node (make node-up starts one; NFSP_REQUIRE_NODE=1 makes this a failure); the suite did not run")
		return 0
	}
	out, err := exec.Command(filepath.Join(fw.Env.RepoRoot, "e2e", "testbed", "build-helm.sh")).Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup: e2e/testbed/build-helm.sh:", err)
		return 1
	}
	helm = strings.TrimSpace(string(out))
	code := m.Run()
	if installed.release != nil && installed.ours {
		if err := installed.release.uninstall(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "e2e teardown:", err)
			code = 1
		}
	}
	return code
}

// release is one helm release of charts/ on the node.
type release struct {
	Name, Namespace, Class, ProvisionerName string
}

// values are the --set flags every release on the node needs: the imported image (never
// pulled: there is no registry), the node, and the bed's NFS server as pods reach it.
func (r release) values() []string {
	repo, tag, _ := strings.Cut(node.ProvisionerImage, ":")
	return []string{
		"--set", "image.repository=" + repo, "--set", "image.tag=" + tag, "--set", "image.pullPolicy=Never",
		"--set", "nfs.server=" + node.NFSServer, "--set", "nfs.path=" + fw.Env.NFSPath,
		"--set", "storageClass.name=" + r.Class, "--set", "storageClass.provisionerName=" + r.ProvisionerName,
		"--set-json", fmt.Sprintf(`nodeSelector={"kubernetes.io/hostname":%q}`, node.Name),
		"--set-json", fmt.Sprintf(`tolerations=[{"key":%q,"operator":"Exists","effect":"NoSchedule"}]`, framework.RealNodeTaint),
	}
}

func runHelm(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helm, append(args, "--kubeconfig", fw.Env.Kubeconfig)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// install creates the release's namespace at the restricted Pod Security level (the chart must run
// there) and installs the chart from charts/ with extra --set flags.
func (r release) install(t *testing.T, extra ...string) {
	t.Helper()
	r.installAt(t, "restricted", extra...)
}

// installAt is install into a namespace of the given Pod Security level.
func (r release) installAt(t *testing.T, level string, extra ...string) {
	t.Helper()
	ctx := framework.Context(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.Namespace, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": level, framework.TestLabelKey: framework.TestLabelValue,
	}}}
	// The namespace of an earlier run's release may still be going away.
	framework.Poll(t, "namespace "+r.Namespace+" created", framework.DeleteTimeout, func(ctx context.Context) (bool, error) {
		_, err := fw.Cluster.Clientset.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
		return err == nil, err
	})
	args := append([]string{"install", r.Name, chartDir(), "--namespace", r.Namespace}, r.values()...)
	if _, err := runHelm(ctx, append(args, extra...)...); err != nil {
		t.Fatal(err)
	}
}

// uninstall removes the release and its namespace, and waits until the namespace is gone.
func (r release) uninstall(ctx context.Context) error {
	_, err := runHelm(ctx, "uninstall", r.Name, "--namespace", r.Namespace, "--wait", "--timeout", "3m")
	namespaces := fw.Cluster.Clientset.CoreV1().Namespaces()
	if delErr := namespaces.Delete(ctx, r.Namespace, metav1.DeleteOptions{}); delErr != nil && !apierrors.IsNotFound(delErr) {
		return errors.Join(err, delErr)
	}
	gone := wait.PollUntilContextTimeout(ctx, framework.PollInterval, framework.DeleteTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := namespaces.Get(ctx, r.Namespace, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if gone != nil {
		err = errors.Join(err, fmt.Errorf("namespace %s not gone: %w", r.Namespace, gone))
	}
	return err
}

// pod is the release's provisioner pod once it is Ready.
func (r release) pod(t *testing.T) *corev1.Pod {
	t.Helper()
	var name string
	framework.Poll(t, fmt.Sprintf("a provisioner pod of release %s", r.Name), framework.PodTimeout, func(ctx context.Context) (bool, error) {
		pods, err := fw.Cluster.Clientset.CoreV1().Pods(r.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + r.Name})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				name = p.Name
				return true, nil
			}
		}
		return false, fmt.Errorf("%d pods, none current", len(pods.Items))
	})
	return fw.WaitPodReady(t, r.Namespace, name)
}

// installed is the suite's main release: class nfs-client on the bed's no_root_squash export, as
// the README's quick start installs it. make node-up installs it with helm (e2e/testbed/node/up.sh);
// where nothing did (kind), the first test that needs it installs it, and the suite removes it.
var installed struct {
	sync.Mutex
	release *release
	ours    bool // installed by the suite, so uninstalled at its end
	failed  bool
}

func mainRelease(t *testing.T) release {
	t.Helper()
	installed.Lock()
	defer installed.Unlock()
	if installed.failed {
		t.Fatal("the suite's helm install failed in an earlier test")
	}
	if installed.release == nil {
		r := release{Name: "nfsp", Namespace: "nfsp-node-system", Class: "nfs-client", ProvisionerName: "nfsp.node/chart"}
		installed.failed = true
		if _, err := runHelm(framework.Context(t), "status", r.Name, "--namespace", r.Namespace); err != nil {
			r.install(t, "--set-json", `nfs.mountOptions=["nfsvers=3","noatime","nolock"]`)
			installed.ours = true
		}
		class, err := fw.Cluster.Clientset.StorageV1().StorageClasses().Get(framework.Context(t), r.Class, metav1.GetOptions{})
		if err != nil || class.Provisioner != r.ProvisionerName {
			t.Fatalf("class %s of release %s: %v, want provisioner %s", r.Class, r.Name, err, r.ProvisionerName)
		}
		installed.release = &r
		r.pod(t)
		installed.failed = false
	}
	return *installed.release
}

func chartDir() string { return filepath.Join(fw.Env.RepoRoot, "charts", "nfs-subdir-provisioner") }
