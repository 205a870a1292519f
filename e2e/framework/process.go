//go:build e2e

package framework

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// ProcessOptions say how to run the provisioner binary. By default it gets exactly the anchor
// project's environment (KUBECONFIG, NFS_SERVER, NFS_PATH, PROVISIONER_NAME, POD_NAMESPACE), as a
// user switching images has it.
type ProcessOptions struct {
	Bin        string   // the binary; empty: Env.ProvisionerBin
	Name       string   // PROVISIONER_NAME
	Kubeconfig string   // the ServiceAccount kubeconfig it authenticates with
	NFSServer  string   // NFS_SERVER; empty: Env.NFSServer
	NFSPath    string   // NFS_PATH; empty: Env.NFSPath
	Env        []string // when set, the whole environment instead of the anchor's (a chart's Deployment)
	Args       []string // flags; --metrics-address is set by Start (any given is replaced)
	LogPath    string   // stdout and stderr
	WaitReady  bool     // wait until /readyz answers 200 (a minute at most)
}

// Process is one provisioner process of a test.
type Process struct {
	Cmd        *exec.Cmd
	LogPath    string
	MetricsURL string
	exited     chan struct{}
	done       atomic.Bool // exited is closed
	ExitErr    error       // set once it exited
}

// StartProvisioner runs the binary as options say; with WaitReady it returns once /readyz answers.
// Should the test binary die without stopping it, the provisioner gets SIGTERM too.
func (f *Framework) StartProvisioner(ctx context.Context, o ProcessOptions) (*Process, error) {
	if o.Bin == "" {
		o.Bin = f.Env.ProvisionerBin
	}
	env := o.Env
	if env == nil {
		env = []string{
			"KUBECONFIG=" + o.Kubeconfig,
			"NFS_SERVER=" + orDefault(o.NFSServer, f.Env.NFSServer),
			"NFS_PATH=" + orDefault(o.NFSPath, f.Env.NFSPath),
			"PROVISIONER_NAME=" + o.Name,
			"POD_NAMESPACE=" + ProvisionerNamespace,
		}
	}
	port, err := FreeLoopbackPort()
	if err != nil {
		return nil, err
	}
	args := []string{"--metrics-address=127.0.0.1:" + strconv.Itoa(port)}
	for _, arg := range o.Args {
		if !strings.HasPrefix(arg, "--metrics-address=") {
			args = append(args, arg)
		}
	}
	logFile, err := os.Create(o.LogPath)
	if err != nil {
		return nil, fmt.Errorf("creating the provisioner log: %w", err)
	}
	cmd := exec.Command(o.Bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", o.Bin, err)
	}
	p := &Process{Cmd: cmd, LogPath: o.LogPath, MetricsURL: "http://127.0.0.1:" + strconv.Itoa(port), exited: make(chan struct{})}
	go func() {
		p.ExitErr = cmd.Wait()
		logFile.Close()
		p.done.Store(true)
		close(p.exited)
	}()
	if !o.WaitReady {
		return p, nil
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if !p.Running() {
			return false, fmt.Errorf("the provisioner exited: %v", p.ExitErr)
		}
		return p.EndpointStatus(ctx, "/readyz") == http.StatusOK, nil
	})
	if err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("waiting for the provisioner's /readyz (log: %s): %w", o.LogPath, err)
	}
	return p, nil
}

func orDefault(value, fallback string) string {
	if value == "" {
		return fallback
	}
	return value
}

// Pid is the process id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Running tells whether the process has not exited yet.
func (p *Process) Running() bool { return !p.done.Load() }

// Stop sends SIGTERM (so the provisioner releases its leader Lease) and waits for the exit.
func (p *Process) Stop() error {
	if !p.Running() {
		return p.ExitErr
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling the provisioner: %w", err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(30 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.exited
		return errors.New("the provisioner did not exit within 30 s of SIGTERM; killed")
	}
}

// Kill SIGKILLs the process and waits (10 s at most) for it to be gone; failing that, the test fails.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil && p.Running() {
		t.Fatalf("SIGKILL to the provisioner: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("provisioner %d survived SIGKILL for 10 s", p.Pid())
	}
}

// Log is what the process has written so far.
func (p *Process) Log() string {
	content, _ := os.ReadFile(p.LogPath)
	return string(content)
}

// IsLeader tells whether the process has logged that it became the leader (main.go's message).
func (p *Process) IsLeader() bool {
	return strings.Contains(p.Log(), "became leader")
}

// leaseAcquiredMessage is what client-go's leader election logs when it takes the Lease
// ("Successfully acquired lease" in v0.37; compared in lower case).
const leaseAcquiredMessage = "successfully acquired lease"

// WaitForLeadership waits until this process, named name, holds its leader Lease, so that no other
// provisioner of the same name (another e2e run, the demo, an in-cluster install) is what a test
// observes; on timeout it says who holds the Lease.
func (p *Process) WaitForLeadership(ctx context.Context, c *Cluster, name string, timeout time.Duration) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if !p.Running() {
			return false, fmt.Errorf("the provisioner exited: %v", p.ExitErr)
		}
		return bytes.Contains(bytes.ToLower([]byte(p.Log())), []byte(leaseAcquiredMessage)), nil
	})
	if err == nil {
		return nil
	}
	leaseName := strings.ReplaceAll(name, "/", "-")
	holder := "unknown"
	if lease, leaseErr := c.Clientset.CoordinationV1().Leases(ProvisionerNamespace).Get(ctx, leaseName, metav1.GetOptions{}); leaseErr == nil && lease.Spec.HolderIdentity != nil {
		holder = *lease.Spec.HolderIdentity
	}
	return fmt.Errorf("the provisioner did not become leader within %s (Lease %s/%s held by %q: is another provisioner named %s running against this cluster, e.g. another e2e run or make demo?): %w",
		timeout, ProvisionerNamespace, leaseName, holder, name, err)
}

// EndpointStatus is the HTTP status of GET <metrics address><path>, 0 when it does not answer.
func (p *Process) EndpointStatus(ctx context.Context, path string) int {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	request, err := http.NewRequestWithContext(ctx, http.MethodGet, p.MetricsURL+path, nil)
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

// Metrics scrapes the process's /metrics.
func (p *Process) Metrics(ctx context.Context) (Metrics, error) {
	return Scrape(ctx, p.MetricsURL+"/metrics")
}

// Metric is the sum of the samples of a counter or gauge whose labels include labels (0 when the
// family is absent).
func (p *Process) Metric(ctx context.Context, name string, labels map[string]string) (float64, error) {
	metrics, err := p.Metrics(ctx)
	if err != nil {
		return 0, err
	}
	return metrics.Sum(name, labels), nil
}

var panicPattern = regexp.MustCompile(`(?i)\bpanic\b|fatal error:|goroutine \d+ \[running\]`)

// PanicLines are the log lines that show a panic (recovered or not).
func (p *Process) PanicLines() ([]string, error) {
	file, err := os.Open(p.LogPath)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	var lines []string
	scanner := bufio.NewScanner(file)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		if panicPattern.MatchString(scanner.Text()) {
			lines = append(lines, scanner.Text())
		}
	}
	return lines, scanner.Err()
}

// FreeLoopbackPort is a TCP port on 127.0.0.1 nobody listens on now.
func FreeLoopbackPort() (int, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port, nil
}

// PrintFile copies a file (a provisioner's log) to stderr between markers, for failure reports.
func PrintFile(path string) {
	content, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot read %s: %v\n", path, err)
		return
	}
	fmt.Fprintf(os.Stderr, "\n========== %s ==========\n%s\n========== end of %s ==========\n", path, content, path)
}
