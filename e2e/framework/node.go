//go:build e2e

package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/testbed"
)

// RealNodeTaint keeps every pod but the node suite's off the real node (the other suites' pods
// belong on kwok's node, where nothing runs).
const RealNodeTaint = "nfsp.dev/real-node"

// Node is a real kubelet node the node suite runs pods on: the test bed's VM (make node-up) or a
// kind worker. Exec runs a command on the node (ssh.sh or docker exec), which is how the suite
// reaches containers: the apiserver cannot reach a VM's kubelet, so there is no kubectl exec.
type Node struct {
	Name      string
	NFSServer string   // the bed's NFS server as pods on the node reach it
	Exec      []string // command prefix that runs its arguments on the node
	// Images the node has without a registry.
	ProvisionerImage, RedisImage, ShellImage string
	KnfsdServer                              string // Linux's NFS server on the node; empty if none
}

// LoadNode reads E2E_NODE_* (or the bed's env file while the node VM runs); ok is false when no
// node is there.
func LoadNode() (node Node, ok bool, err error) {
	bed := testbed.Env(testbed.Dir(), "kube-apiserver", "node-vm")
	lookup := func(name string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return bed[name]
	}
	node = Node{
		Name:             lookup("E2E_NODE_NAME"),
		NFSServer:        lookup("E2E_NODE_NFS_SERVER"),
		Exec:             strings.Fields(lookup("E2E_NODE_SSH")),
		ProvisionerImage: lookup("E2E_NODE_IMAGE_PROVISIONER"),
		RedisImage:       lookup("E2E_NODE_IMAGE_REDIS"),
		ShellImage:       lookup("E2E_NODE_IMAGE_SHELL"),
		KnfsdServer:      lookup("E2E_NODE_KNFSD_SERVER"),
	}
	if node.Name == "" {
		return Node{}, false, nil
	}
	var missing []string
	for name, v := range map[string]string{"E2E_NODE_NFS_SERVER": node.NFSServer, "E2E_NODE_SSH": lookup("E2E_NODE_SSH"),
		"E2E_NODE_IMAGE_PROVISIONER": node.ProvisionerImage, "E2E_NODE_IMAGE_REDIS": node.RedisImage, "E2E_NODE_IMAGE_SHELL": node.ShellImage} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return Node{}, false, fmt.Errorf("E2E_NODE_NAME is set but not %s", strings.Join(missing, ", "))
	}
	return node, true, nil
}

// Run runs a shell command line on the node and returns its output.
func (n Node) Run(ctx context.Context, script string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	args := append(append([]string(nil), n.Exec[1:]...), "sh", "-c", ShellQuote(script))
	out, err := exec.CommandContext(ctx, n.Exec[0], args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("on node %s: %s: %w\n%s", n.Name, script, err, out)
	}
	return string(out), nil
}

// InContainer runs argv in the running container of a pod, through the node's crictl.
func (n Node) InContainer(ctx context.Context, namespace, pod, container string, argv ...string) (string, error) {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = ShellQuote(a)
	}
	script := fmt.Sprintf(`id=$(crictl ps -q --state running --name %s --label io.kubernetes.pod.namespace=%s --label io.kubernetes.pod.name=%s | head -n1)
[ -n "$id" ] || { echo "no running container %s in pod %s/%s" >&2; exit 1; }
exec crictl exec "$id" %s`, ShellQuote("^"+container+"$"), ShellQuote(namespace), ShellQuote(pod), container, namespace, pod, strings.Join(quoted, " "))
	return n.Run(ctx, script)
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// OnNode puts a pod spec on the node: its name as node selector, the real node's taint
// tolerated, and a security context the restricted Pod Security level admits.
func (n Node) OnNode(spec *corev1.PodSpec) {
	spec.NodeSelector = map[string]string{"kubernetes.io/hostname": n.Name}
	spec.Tolerations = append(spec.Tolerations, corev1.Toleration{Key: RealNodeTaint, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	spec.SecurityContext.RunAsNonRoot = ptr.To(true)
	spec.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if c.SecurityContext == nil {
			c.SecurityContext = &corev1.SecurityContext{}
		}
		c.SecurityContext.AllowPrivilegeEscalation = ptr.To(false)
		c.SecurityContext.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}
	}
}

// ShellPod is a one-shot pod of the node's shell image that runs script as uid:gid with the
// claim mounted at /data; its output is its termination message (the suite cannot read logs).
func (n Node) ShellPod(namespace, name, claim string, uid int64, script string) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{TestLabelKey: TestLabelValue}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsUser: ptr.To(uid), RunAsGroup: ptr.To(uid),
			},
			Containers: []corev1.Container{{
				Name:                     "sh",
				Image:                    n.ShellImage,
				ImagePullPolicy:          corev1.PullNever,
				Command:                  []string{"/bin/sh", "-c", "exec >/dev/termination-log 2>&1\n" + script},
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				VolumeMounts:             []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
			}}},
		},
	}
	n.OnNode(&pod.Spec)
	return pod
}

// PodTimeout is how long a pod on the node may take to start and end: the VM runs under
// software emulation, where a container starts in seconds, not milliseconds.
const PodTimeout = 5 * time.Minute

// RunPod creates pod, waits until it has ended, deletes it and returns whether it succeeded and
// its termination message.
func (f *Framework) RunPod(t *testing.T, pod *corev1.Pod) (succeeded bool, message string) {
	t.Helper()
	ctx := Context(t)
	pods := f.Cluster.Clientset.CoreV1().Pods(pod.Namespace)
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	defer func() {
		_ = pods.Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
	}()
	var last *corev1.Pod
	Poll(t, fmt.Sprintf("pod %s/%s to end", pod.Namespace, pod.Name), PodTimeout, func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = p
		switch p.Status.Phase {
		case corev1.PodSucceeded, corev1.PodFailed:
			return true, nil
		}
		return false, fmt.Errorf("phase %s %s; events: %s", p.Status.Phase, podWaitingReasons(p), f.PodEvents(ctx, pod.Namespace, pod.Name))
	})
	for _, s := range last.Status.ContainerStatuses {
		if s.State.Terminated != nil {
			message += s.State.Terminated.Message
		}
	}
	return last.Status.Phase == corev1.PodSucceeded, message
}

// WaitPodReady waits until a pod (which may not exist yet) is Ready, and returns it.
func (f *Framework) WaitPodReady(t *testing.T, namespace, name string) *corev1.Pod {
	t.Helper()
	var ready *corev1.Pod
	Poll(t, fmt.Sprintf("pod %s/%s Ready", namespace, name), PodTimeout, func(ctx context.Context) (bool, error) {
		p, err := f.Cluster.Clientset.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if PodReady(p) && p.DeletionTimestamp == nil {
			ready = p
			return true, nil
		}
		return false, fmt.Errorf("phase %s %s; events: %s", p.Status.Phase, podWaitingReasons(p), f.PodEvents(ctx, namespace, name))
	})
	return ready
}

// PodReady reports the pod's Ready condition.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podWaitingReasons(p *corev1.Pod) string {
	var reasons []string
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			reasons = append(reasons, fmt.Sprintf("%s: %s", c.Type, c.Message))
		}
	}
	for _, s := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		switch {
		case s.State.Waiting != nil:
			reasons = append(reasons, fmt.Sprintf("%s waiting: %s %s", s.Name, s.State.Waiting.Reason, s.State.Waiting.Message))
		case s.State.Terminated != nil:
			reasons = append(reasons, fmt.Sprintf("%s terminated: %s %s", s.Name, s.State.Terminated.Reason, s.State.Terminated.Message))
		}
	}
	return strings.Join(reasons, "; ")
}

// PodEvents is the Events of a pod, one per line (a mount failure is said there).
func (f *Framework) PodEvents(ctx context.Context, namespace, name string) string {
	list, err := f.Cluster.Clientset.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return ""
		}
		return err.Error()
	}
	var b strings.Builder
	for _, e := range list.Items {
		fmt.Fprintf(&b, "%s %s: %s\n", e.Type, e.Reason, e.Message)
	}
	return b.String()
}
