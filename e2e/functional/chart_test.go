//go:build e2e

package functional

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"
)

// TestChartInstall installs the chart for real (no replicas: kubelet does not run containers on
// the bed) and runs the binary exactly as its Deployment says — args, env, and a token of the
// chart's own ServiceAccount — so the chart's RBAC, flags and env are what a claim goes through:
// it is provisioned, gets its Event, and is archived when deleted, with no request forbidden.
func TestChartInstall(t *testing.T) {
	helm := helmBinary(t)
	for _, backend := range []string{"wire", "mounted"} {
		t.Run(backend, func(t *testing.T) {
			namespace := fw.CreateNamespace(t, "chart-"+backend)
			class := namespace // unique, and cluster-scoped objects of the release carry it
			release := "nfsp-" + backend
			chart := filepath.Join(fw.Env.RepoRoot, "charts", "nfs-subdir-provisioner")
			runHelm(t, helm, "upgrade", "--install", release, chart, "--namespace", namespace, "--timeout", "60s",
				"--set", "replicaCount=0", "--set", "nfs.server="+fw.Env.NFSServer, "--set", "nfs.path="+fw.Env.NFSPath,
				"--set", "storageClass.name="+class, "--set", "backend.type="+backend)
			t.Cleanup(func() { runHelm(t, helm, "uninstall", release, "--namespace", namespace) })
			deployment := renderedDeployment(t, runHelm(t, helm, "get", "manifest", release, "--namespace", namespace))

			p := startAsDeployment(t, deployment, namespace)
			claim := fw.CreateClaim(t, namespace, framework.ClaimOptions{Name: "data", Class: class, Size: "1Mi"})
			_, pv := fw.WaitClaimBound(t, namespace, "data")
			export := fw.DefaultExport()
			dir := export.VolumeDir(t, pv)
			framework.AssertExists(t, dir)
			fw.WaitEvent(t, claim, corev1.EventTypeNormal, "ProvisioningSucceeded", pv.Name)
			fw.DeleteClaim(t, namespace, "data")
			fw.WaitVolumeGone(t, pv.Name)
			framework.AssertNotExists(t, dir)
			archive := filepath.Join(export.LocalDir, "archived-"+filepath.Base(dir))
			framework.AssertExists(t, archive)
			if err := os.RemoveAll(archive); err != nil { // other suites count what is on the export
				t.Error(err)
			}
			// A verb missing from the RBAC shows as "forbidden" in the log even where the
			// provisioner carries on (Events, say).
			for _, line := range strings.Split(p.Log(), "\n") {
				if strings.Contains(strings.ToLower(line), "forbidden") {
					t.Errorf("the API refused a call under the chart's RBAC: %s", line)
				}
			}
		})
	}
}

// helmBinary is the helm the test bed scripts build and cache (e2e/testbed/build-helm.sh prints it).
func helmBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(fw.Env.RepoRoot, "e2e", "testbed", "build-helm.sh")).Output()
	if err != nil {
		t.Fatalf("e2e/testbed/build-helm.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func runHelm(t *testing.T, helm string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(framework.Context(t), helm, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+fw.Env.Kubeconfig)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// renderedDeployment is the one Deployment of a release's manifest.
func renderedDeployment(t *testing.T, manifest []byte) *appsv1.Deployment {
	t.Helper()
	decoder := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	for {
		object := &unstructured.Unstructured{}
		err := decoder.Decode(&object.Object)
		if errors.Is(err, io.EOF) {
			t.Fatal("the release has no Deployment")
		}
		if err != nil {
			t.Fatalf("decoding the release's manifest: %v", err)
		}
		if object.GetKind() != "Deployment" {
			continue
		}
		deployment := &appsv1.Deployment{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(object.Object, deployment); err != nil {
			t.Fatal(err)
		}
		return deployment
	}
}

// startAsDeployment runs the binary with the container's args and env as kubelet would pass them,
// authenticated as the pod's ServiceAccount; the mounted backend's mount root is the export's
// backing directory, standing in for the NFS volume kubelet would mount there.
func startAsDeployment(t *testing.T, deployment *appsv1.Deployment, namespace string) *framework.Process {
	t.Helper()
	ctx := framework.Context(t)
	pod := deployment.Spec.Template.Spec
	kubeconfig, err := fw.Cluster.KubeconfigFor(ctx, t.TempDir(), namespace, pod.ServiceAccountName)
	if err != nil {
		t.Fatal(err)
	}
	container := pod.Containers[0]
	env := []string{"KUBECONFIG=" + kubeconfig}
	for _, v := range container.Env {
		switch {
		case v.Name == "POD_NAMESPACE":
			env = append(env, v.Name+"="+namespace)
		case v.ValueFrom != nil:
			t.Fatalf("env %s comes from %v; the test knows only POD_NAMESPACE's source", v.Name, v.ValueFrom)
		default:
			env = append(env, v.Name+"="+v.Value)
		}
	}
	var args []string
	for _, arg := range container.Args {
		if strings.HasPrefix(arg, "--mount-root=") {
			arg = "--mount-root=" + fw.Env.ExportDir
		}
		args = append(args, arg)
	}
	logPath := filepath.Join(t.TempDir(), "provisioner.log")
	p, err := fw.StartProvisioner(ctx, framework.ProcessOptions{Env: env, Args: args, LogPath: logPath, WaitReady: true})
	if err != nil {
		framework.PrintFile(logPath)
		t.Fatal(fmt.Errorf("the provisioner as the chart's Deployment runs it (args %q): %w", args, err))
	}
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() {
			framework.PrintFile(logPath)
		}
	})
	return p
}
