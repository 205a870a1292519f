//go:build e2e

package framework

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	storagev1 "k8s.io/api/storage/v1"
)

// Short Lease timings for the provisioners of an Instance, so a SIGKILLed leader's Lease expires
// fast.
const (
	LeaseDuration = 5 * time.Second
	RenewDeadline = 3 * time.Second
	RetryPeriod   = 500 * time.Millisecond
)

// Instance is a provisioner install of one test's own: its own PROVISIONER_NAME, namespace,
// default StorageClass and processes (started as the test says), so the functional suite's shared
// provisioner ignores its claims. When the test ends its processes are stopped; when it failed,
// their logs are printed.
type Instance struct {
	f          *Framework
	Name       string // PROVISIONER_NAME and the classes' provisioner
	Namespace  string
	Class      *storagev1.StorageClass
	Kubeconfig string
	Dir        string // logs

	mu    sync.Mutex
	procs []*Process
}

// NewInstance makes the namespace, a ServiceAccount kubeconfig and the default class of an instance.
func (f *Framework) NewInstance(t *testing.T, prefix string) *Instance {
	t.Helper()
	suffix := strconv.FormatUint(rand.Uint64()%1e8, 36)
	in := &Instance{
		f:         f,
		Name:      "e2e.nfs-subdir-provisioner/" + prefix + "-" + suffix,
		Namespace: f.CreateNamespace(t, prefix),
		Dir:       t.TempDir(),
	}
	var err error
	if in.Kubeconfig, err = f.Cluster.ServiceAccountKubeconfig(Context(t), in.Dir); err != nil {
		t.Fatal(err)
	}
	in.Class = in.CreateClass(t, nil)
	t.Cleanup(func() {
		procs := in.Processes()
		for _, p := range procs {
			if !p.Running() {
				continue // killed by the test, or exited (the test counts that)
			}
			if err := p.Stop(); err != nil {
				t.Errorf("stopping provisioner %d: %v", p.Pid(), err)
			}
		}
		if t.Failed() {
			for _, p := range procs {
				PrintFile(p.LogPath)
			}
		}
	})
	return in
}

// CreateClass makes a StorageClass of this instance.
func (in *Instance) CreateClass(t *testing.T, parameters map[string]string) *storagev1.StorageClass {
	t.Helper()
	return in.f.CreateClass(t, ClassOptions{Provisioner: in.Name, Parameters: parameters})
}

// Start runs one more provisioner process of this instance with the anchor's environment, the
// short Lease timings and extraArgs (which may override them), and waits for /readyz when
// waitReady is set.
func (in *Instance) Start(t *testing.T, waitReady bool, extraArgs ...string) *Process {
	t.Helper()
	in.mu.Lock()
	logPath := filepath.Join(in.Dir, fmt.Sprintf("provisioner-%d.log", len(in.procs)))
	in.mu.Unlock()
	args := append([]string{
		"--leader-election-lease-duration=" + LeaseDuration.String(),
		"--leader-election-renew-deadline=" + RenewDeadline.String(),
		"--leader-election-retry-period=" + RetryPeriod.String(),
	}, extraArgs...)
	p, err := in.f.StartProvisioner(Context(t), ProcessOptions{Name: in.Name, Kubeconfig: in.Kubeconfig, Args: args, LogPath: logPath, WaitReady: waitReady})
	if err != nil {
		PrintFile(logPath)
		t.Fatal(err)
	}
	in.mu.Lock()
	in.procs = append(in.procs, p)
	in.mu.Unlock()
	return p
}

// Processes are every process started so far.
func (in *Instance) Processes() []*Process {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]*Process(nil), in.procs...)
}

// CountPanics counts the log lines of every process that show a panic, each an error of the test.
func (in *Instance) CountPanics(t *testing.T) int {
	t.Helper()
	n := 0
	for _, p := range in.Processes() {
		lines, err := p.PanicLines()
		if err != nil {
			t.Errorf("reading %s: %v", p.LogPath, err)
		}
		for _, line := range lines {
			n++
			t.Errorf("panic in %s: %s", p.LogPath, line)
		}
	}
	return n
}
