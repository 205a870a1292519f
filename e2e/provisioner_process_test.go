//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

const (
	defaultProvisionerName    = "k8s-sigs.io/nfs-subdir-external-provisioner"
	provisionerNamespace      = "default"
	provisionerServiceAccount = "nfs-client-provisioner"
)

// provisionerName is the PROVISIONER_NAME of the suite's provisioner: the anchor project's name
// unless E2E_PROVISIONER_NAME says otherwise (for a cluster where that name is taken).
var provisionerName = func() string {
	if name := os.Getenv("E2E_PROVISIONER_NAME"); name != "" {
		return name
	}
	return defaultProvisionerName
}()

// provisionerProcess is the binary under test, run as a subprocess with the environment a user of
// nfs-subdir-external-provisioner sets, and a kubeconfig holding its ServiceAccount's token.
type provisionerProcess struct {
	cmd        *exec.Cmd
	logPath    string
	metricsURL string
	exited     chan struct{}
	exitErr    error
}

// writeServiceAccountKubeconfig asks the TokenRequest API for a token of the provisioner's
// ServiceAccount and writes a kubeconfig that authenticates with it, so the provisioner has
// exactly the permissions deploy/rbac.yaml grants.
func (c *cluster) writeServiceAccountKubeconfig(ctx context.Context, dir string) (string, error) {
	request := &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](4 * 3600)},
	}
	token, err := c.clientset.CoreV1().ServiceAccounts(provisionerNamespace).
		CreateToken(ctx, provisionerServiceAccount, request, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for ServiceAccount %s/%s: %w", provisionerNamespace, provisionerServiceAccount, err)
	}
	caData := c.restConfig.CAData
	if len(caData) == 0 && c.restConfig.CAFile != "" {
		if caData, err = os.ReadFile(c.restConfig.CAFile); err != nil {
			return "", fmt.Errorf("reading the cluster CA: %w", err)
		}
	}
	config := clientcmdapi.NewConfig()
	config.Clusters["cluster"] = &clientcmdapi.Cluster{
		Server:                   c.restConfig.Host,
		CertificateAuthorityData: caData,
		InsecureSkipTLSVerify:    c.restConfig.Insecure,
	}
	config.AuthInfos["provisioner"] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
	config.Contexts["provisioner"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "provisioner", Namespace: provisionerNamespace}
	config.CurrentContext = "provisioner"
	path := filepath.Join(dir, "provisioner.kubeconfig")
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		return "", fmt.Errorf("writing the provisioner's kubeconfig: %w", err)
	}
	return path, nil
}

// startProvisioner runs the binary with only the anchor project's environment variables and waits
// until its /readyz answers.
func startProvisioner(ctx context.Context, env testEnv, kubeconfig, logPath string) (*provisionerProcess, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the provisioner log: %w", err)
	}
	cmd := exec.Command(env.provisionerBin, "--metrics-address=127.0.0.1:"+strconv.Itoa(port))
	cmd.Env = []string{
		"KUBECONFIG=" + kubeconfig,
		"NFS_SERVER=" + env.nfsServer,
		"NFS_PATH=" + env.nfsPath,
		"PROVISIONER_NAME=" + provisionerName,
		"POD_NAMESPACE=" + provisionerNamespace,
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Should the test binary die without stopping it, the provisioner gets SIGTERM too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", env.provisionerBin, err)
	}
	process := &provisionerProcess{
		cmd:        cmd,
		logPath:    logPath,
		metricsURL: "http://127.0.0.1:" + strconv.Itoa(port),
		exited:     make(chan struct{}),
	}
	go func() {
		process.exitErr = cmd.Wait()
		logFile.Close()
		close(process.exited)
	}()
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if !process.running() {
			return false, fmt.Errorf("the provisioner exited: %v", process.exitErr)
		}
		return process.endpointStatus(ctx, "/readyz") == http.StatusOK, nil
	})
	if err != nil {
		process.stop()
		return nil, fmt.Errorf("waiting for the provisioner's /readyz (log: %s): %w", logPath, err)
	}
	return process, nil
}

// leaseAcquiredMessage is what client-go's leader election logs when it takes the Lease
// ("Successfully acquired lease" in v0.37; compared in lower case).
const leaseAcquiredMessage = "successfully acquired lease"

// waitForLeadership waits until this process holds the leader Lease, so that no other provisioner
// of the same name (another e2e run, the demo, an in-cluster install) is what the tests observe.
func (p *provisionerProcess) waitForLeadership(ctx context.Context, c *cluster, timeout time.Duration) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if !p.running() {
			return false, fmt.Errorf("the provisioner exited: %v", p.exitErr)
		}
		log, err := os.ReadFile(p.logPath)
		if err != nil {
			return false, err
		}
		return bytes.Contains(bytes.ToLower(log), []byte(leaseAcquiredMessage)), nil
	})
	if err == nil {
		return nil
	}
	leaseName := strings.ReplaceAll(provisionerName, "/", "-")
	holder := "unknown"
	if lease, leaseErr := c.clientset.CoordinationV1().Leases(provisionerNamespace).Get(ctx, leaseName, metav1.GetOptions{}); leaseErr == nil && lease.Spec.HolderIdentity != nil {
		holder = *lease.Spec.HolderIdentity
	}
	return fmt.Errorf("the provisioner did not become leader within %s (Lease %s/%s held by %q: is another provisioner named %s running against this cluster, e.g. another e2e run or make demo?): %w",
		timeout, provisionerNamespace, leaseName, holder, provisionerName, err)
}

func (p *provisionerProcess) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// endpointStatus is the HTTP status of GET <metrics address><path>, 0 when it does not answer.
func (p *provisionerProcess) endpointStatus(ctx context.Context, path string) int {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	request, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metricsURL+path, nil)
	if err != nil {
		return 0
	}
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		return 0
	}
	response.Body.Close()
	return response.StatusCode
}

// stop sends SIGTERM (so the provisioner releases its leader lease) and waits for the exit.
func (p *provisionerProcess) stop() error {
	if !p.running() {
		return p.exitErr
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling the provisioner: %w", err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return errors.New("the provisioner did not exit within 30 s of SIGTERM; killed")
	}
}

func freeLoopbackPort() (int, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port, nil
}
