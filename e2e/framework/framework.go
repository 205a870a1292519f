//go:build e2e

package framework

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

const (
	PollInterval  = 250 * time.Millisecond
	BindTimeout   = 2 * time.Minute
	DeleteTimeout = 2 * time.Minute
	EventTimeout  = 2 * time.Minute
	ClaimSize     = "100Mi"
	// FailureReason is the Warning reason of a claim the provisioner refused.
	FailureReason = "ProvisioningFailed"
	// TestLabelKey marks every object a suite makes, so leftovers of a killed run can be found.
	TestLabelKey   = "e2e.nfs-subdir-provisioner/test"
	TestLabelValue = "true"
)

// Framework is one suite's environment and clients. Provisioner is the name classes get when
// ClassOptions names none; BeforeClass, when set, runs before such a class is made (the
// functional suite waits there for its provisioner to lead).
type Framework struct {
	Env         Env
	Cluster     *Cluster
	Provisioner string
	BeforeClass func(t *testing.T)
}

// New loads the environment, makes the admin clients and installs the provisioner's RBAC.
func New(ctx context.Context) (*Framework, error) {
	env, err := LoadEnv()
	if err != nil {
		return nil, err
	}
	cluster, err := NewCluster(env.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if err := cluster.InstallRBAC(ctx, env.RepoRoot); err != nil {
		return nil, err
	}
	return &Framework{Env: env, Cluster: cluster, Provisioner: env.ProvisionerName}, nil
}

// MustNew is New for a TestMain: on error it says so and exits the test binary with status 1.
func MustNew() *Framework {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f, err := New(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	return f
}

// Context is a context that ends with the test.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

// Poll runs condition every PollInterval until it is true or timeout passes; a timeout fails the
// test with what it was waiting for and the condition's last error. A condition explains why it
// is not done yet with an error; an error never stops the polling.
func Poll(t testing.TB, what string, timeout time.Duration, condition func(ctx context.Context) (bool, error)) {
	t.Helper()
	var lastErr error
	err := wait.PollUntilContextTimeout(Context(t), PollInterval, timeout, true, func(ctx context.Context) (bool, error) {
		done, err := condition(ctx)
		if done {
			return true, nil
		}
		// Keep the condition's own reason, not the deadline's (client-go's rate limiter reports
		// it early as "would exceed context deadline").
		if ctx.Err() == nil && (err == nil || !strings.Contains(err.Error(), "context deadline")) {
			lastErr = err
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("waiting %s for %s: %v (last error: %v)", timeout, what, err, lastErr)
	}
}

// Paced starts op(0..count-1) spread evenly over span (the shape of a burst, not synchronisation),
// each in its own goroutine and retried until it returns no error (for up to 3 minutes). The
// returned function waits for all of them and reports the first that never succeeded, with what
// it was doing and its last error.
func Paced(ctx context.Context, count int, span time.Duration, op func(ctx context.Context, i int) (what string, err error)) func() error {
	var wg sync.WaitGroup
	errs := make(chan error, count+1)
	interval := span / time.Duration(max(count, 1))
	go func() {
		ticker := time.NewTicker(max(interval, time.Millisecond))
		defer ticker.Stop()
	start:
		for i := 0; i < count; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var what string
				var lastErr error
				err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
					what, lastErr = op(ctx, i)
					return lastErr == nil, nil
				})
				if err != nil {
					errs <- fmt.Errorf("%s: %v (last error: %v)", what, err, lastErr)
				}
			}()
			if i < count-1 {
				select {
				case <-ticker.C:
				case <-ctx.Done():
					errs <- fmt.Errorf("gave up after starting %d of %d: %w", i+1, count, ctx.Err())
					break start
				}
			}
		}
		wg.Wait()
		close(errs)
	}()
	return func() error {
		for err := range errs {
			return err
		}
		return nil
	}
}

// ForEach runs fn(0..n-1) on workers goroutines; it stops at the first error and returns it.
func ForEach(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	indexes := make(chan int)
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range max(1, min(workers, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range indexes {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = fmt.Errorf("item %d: %w", i, err); cancel() })
				}
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case indexes <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(indexes)
	wg.Wait()
	return first
}
