//go:build e2e

package fault

// Shared machinery of the fault suite (fault_*_test.go, tests named TestFault*). Each case starts
// its own provisioner process(es) under its own PROVISIONER_NAME and StorageClass, so the suite's
// shared provisioner ignores its claims, drives a burst of claims through a fault, and reports the
// same figures: claims, bound, orphan directories, duplicate PVs, panics in the logs, provisioner
// restarts, recovery time.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

const (
	// defaultFaultClaims keeps `make test` well inside CI's budget; `make test-faults` sets
	// E2E_FAULT_CLAIMS=300.
	defaultFaultClaims = 40
	faultSettleTimeout = 5 * time.Minute
)

// faultClaimCount is E2E_FAULT_CLAIMS, or the default.
func faultClaimCount(t *testing.T) int {
	t.Helper()
	value := os.Getenv("E2E_FAULT_CLAIMS")
	if value == "" {
		return defaultFaultClaims
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < 5 {
		t.Fatalf("E2E_FAULT_CLAIMS=%q: want a number >= 5", value)
	}
	return n
}

// testbedDir is the local test bed's directory (pid files, scripts' state); the fault cases that
// signal the bed's processes need it and are skipped elsewhere (kind).
func testbedDir(t *testing.T) string {
	t.Helper()
	dir := fw.Env.TestbedDir
	if dir == "" {
		t.Skip("E2E_TESTBED_DIR is not set: this fault case signals the local test bed's processes")
	}
	return dir
}

// faultRun is one fault case: a provisioner instance of its own and the number of claims it drives
// through the fault.
type faultRun struct {
	*framework.Instance
	claims int
}

func newFaultRun(t *testing.T, prefix string, claims int) *faultRun {
	t.Helper()
	return &faultRun{Instance: fw.NewInstance(t, "fault-"+prefix), claims: claims}
}

const (
	metricProvisionFailed = "controller_persistentvolumeclaim_provision_failed_total"
	metricDeleteFailed    = "controller_persistentvolume_delete_failed_total"
)

// waitMetricAbove polls until the metric exceeds base: the fault has been seen by the provisioner.
func waitMetricAbove(t *testing.T, p *framework.Process, name string, base float64, timeout time.Duration) float64 {
	t.Helper()
	var value float64
	framework.Poll(t, fmt.Sprintf("%s above %v", name, base), timeout, func(ctx context.Context) (bool, error) {
		var err error
		value, err = p.Metric(ctx, name, nil)
		return err == nil && value > base, err
	})
	return value
}

// claimName is the i-th claim's name; fixed width so no name is a prefix of another.
func claimName(i int) string { return fmt.Sprintf("claim-%04d", i) }

// createClaimsPaced creates claims first..first+count-1 on the class, spread evenly over span (the
// shape of a burst, not synchronisation), each retried until the API server takes it. It returns
// a function that waits for all of them and reports the first that could not be created.
func (r *faultRun) createClaimsPaced(t *testing.T, class string, first, count int, span time.Duration) func() error {
	t.Helper()
	claims := fw.Cluster.Clientset.CoreV1().PersistentVolumeClaims(r.Namespace)
	return framework.Paced(framework.Context(t), count, span, func(ctx context.Context, i int) (string, error) {
		claim := framework.NewClaim(r.Namespace, framework.ClaimOptions{Name: claimName(first + i), Class: class})
		_, err := claims.Create(ctx, claim, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
		return "creating claim " + claim.Name, err
	})
}

// deleteClaimsPaced deletes the named claims spread over span, each retried until it is accepted.
func (r *faultRun) deleteClaimsPaced(t *testing.T, names []string, span time.Duration) func() error {
	t.Helper()
	claims := fw.Cluster.Clientset.CoreV1().PersistentVolumeClaims(r.Namespace)
	return framework.Paced(framework.Context(t), len(names), span, func(ctx context.Context, i int) (string, error) {
		err := claims.Delete(ctx, names[i], metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			err = nil
		}
		return "deleting claim " + names[i], err
	})
}

// listClaims lists this case's claims on a class.
func (r *faultRun) listClaims(ctx context.Context, class string) ([]corev1.PersistentVolumeClaim, error) {
	list, err := fw.Cluster.Clientset.CoreV1().PersistentVolumeClaims(r.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var claims []corev1.PersistentVolumeClaim
	for _, claim := range list.Items {
		if class == "" || ptr.Deref(claim.Spec.StorageClassName, "") == class {
			claims = append(claims, claim)
		}
	}
	return claims, nil
}

// listVolumes lists the PVs bound (or meant) to this case's claims.
func (r *faultRun) listVolumes(ctx context.Context) ([]corev1.PersistentVolume, error) {
	list, err := fw.Cluster.Clientset.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var volumes []corev1.PersistentVolume
	for _, volume := range list.Items {
		if volume.Spec.ClaimRef != nil && volume.Spec.ClaimRef.Namespace == r.Namespace {
			volumes = append(volumes, volume)
		}
	}
	return volumes, nil
}

// waitVolumeCount polls until at least (or, when atMost, at most) n of this case's PVs exist, and
// returns how many there were.
func (r *faultRun) waitVolumeCount(t *testing.T, n int, atMost bool, timeout time.Duration) int {
	t.Helper()
	count := 0
	what := fmt.Sprintf("at least %d PVs", n)
	if atMost {
		what = fmt.Sprintf("at most %d PVs", n)
	}
	framework.Poll(t, what, timeout, func(ctx context.Context) (bool, error) {
		volumes, err := r.listVolumes(ctx)
		if err != nil {
			return false, err
		}
		count = len(volumes)
		if atMost {
			return len(volumes) <= n, fmt.Errorf("%d PVs", len(volumes))
		}
		return len(volumes) >= n, fmt.Errorf("%d PVs", len(volumes))
	})
	return count
}

// waitAllBound polls until want claims on the class exist and are all Bound; it returns how long
// that took. each, when set, runs before every look (the API server case restarts a process that
// ended on a lost Lease there).
func (r *faultRun) waitAllBound(t *testing.T, class string, want int, timeout time.Duration, each ...func() error) time.Duration {
	t.Helper()
	start := time.Now()
	framework.Poll(t, fmt.Sprintf("%d claims on class %s Bound", want, class), timeout, func(ctx context.Context) (bool, error) {
		for _, fn := range each {
			if err := fn(); err != nil {
				return false, err
			}
		}
		claims, err := r.listClaims(ctx, class)
		if err != nil {
			return false, err
		}
		bound := 0
		for _, claim := range claims {
			if claim.Status.Phase == corev1.ClaimBound {
				bound++
			}
		}
		return len(claims) == want && bound == want, fmt.Errorf("%d claims, %d Bound", len(claims), bound)
	})
	return time.Since(start)
}

// waitAllVolumesGone polls until no PV of this case is left; it returns how long that took.
func (r *faultRun) waitAllVolumesGone(t *testing.T, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	r.waitVolumeCount(t, 0, true, timeout)
	return time.Since(start)
}

// faultFigures are what every fault case reports.
type faultFigures struct {
	name         string
	claims       int
	bound        int
	orphans      int // directories on the export not referenced by a PV (archived-* excepted)
	duplicatePVs int // PVs beyond one per claim
	extraDirs    int // directories beyond one per claim
	archived     int // archived-* directories after the delete phase
	panics       int
	restarts     int // provisioner processes that exited without being told to
	recovery     time.Duration
	notes        []string
}

func (f *faultFigures) note(format string, args ...any) {
	f.notes = append(f.notes, fmt.Sprintf(format, args...))
}

// report prints the figures in one greppable line (FAULT-FIGURES) and fails the test on orphans,
// duplicates, panics or restarts.
func (f *faultFigures) report(t *testing.T) {
	t.Helper()
	line := fmt.Sprintf("FAULT-FIGURES %s: claims=%d bound=%d orphans=%d duplicatePVs=%d extraDirs=%d archived=%d panics=%d restarts=%d recovery=%s",
		f.name, f.claims, f.bound, f.orphans, f.duplicatePVs, f.extraDirs, f.archived, f.panics, f.restarts, f.recovery.Round(10*time.Millisecond))
	if len(f.notes) > 0 {
		line += " (" + strings.Join(f.notes, "; ") + ")"
	}
	t.Log(line)
	fmt.Println(line)
	if f.orphans != 0 || f.duplicatePVs != 0 || f.extraDirs != 0 || f.panics != 0 || f.restarts != 0 {
		t.Errorf("%s: want zero orphans, duplicate PVs, extra directories, panics and restarts", f.name)
	}
}

// checkProvisioned counts, for the claims on class (default naming <ns>-<claim>-<pv> at the export
// root): Bound claims, PVs beyond one per claim, directories beyond one per claim, and directories
// of this namespace that no PV references.
func (r *faultRun) checkProvisioned(t *testing.T, f *faultFigures, class string, export framework.Export) {
	t.Helper()
	ctx := framework.Context(t)
	claims, err := r.listClaims(ctx, class)
	if err != nil {
		t.Fatal(err)
	}
	volumes, err := r.listVolumes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byUID := map[string]int{}
	for _, claim := range claims {
		byUID[string(claim.UID)] = 0
		if claim.Status.Phase == corev1.ClaimBound {
			f.bound++
		}
	}
	referenced := map[string]bool{}
	for _, volume := range volumes {
		uid := string(volume.Spec.ClaimRef.UID)
		if _, ok := byUID[uid]; !ok {
			continue // a claim of another class of this case
		}
		byUID[uid]++
		if volume.Spec.NFS != nil {
			if rel, ok := export.Relative(volume.Spec.NFS.Path); ok {
				referenced[rel] = true
			}
		}
	}
	for _, n := range byUID {
		if n > 1 {
			f.duplicatePVs += n - 1
		}
	}
	names := framework.NamesWithPrefix(t, export.LocalDir, r.Namespace+"-")
	for _, name := range names {
		if !referenced[name] {
			f.orphans++
			t.Errorf("orphan directory %s on the export: no PV references it", filepath.Join(export.LocalDir, name))
		}
	}
	for _, claim := range claims {
		n := 0
		for _, name := range names {
			if strings.HasPrefix(name, r.Namespace+"-"+claim.Name+"-") {
				n++
			}
		}
		if n > 1 {
			f.extraDirs += n - 1
			t.Errorf("claim %s has %d directories on the export", claim.Name, n)
		}
	}
}

// checkDeleted counts, after every claim of the case is deleted and its PV gone: directories of
// this namespace left (orphans) and archived ones.
func (r *faultRun) checkDeleted(t *testing.T, f *faultFigures, export framework.Export) {
	t.Helper()
	left := framework.NamesWithPrefix(t, export.LocalDir, r.Namespace+"-")
	f.orphans += len(left)
	if len(left) > 0 {
		t.Errorf("directories left on the export after their PVs were deleted: %v", left)
	}
	f.archived = len(framework.NamesWithPrefix(t, export.LocalDir, "archived-"+r.Namespace+"-"))
}

// assertRunning counts a process that is gone, or is not the one started, as a restart.
func assertRunning(t *testing.T, f *faultFigures, p *framework.Process, pid int) {
	t.Helper()
	if !p.Running() || p.Pid() != pid {
		f.restarts++
		t.Errorf("provisioner %d exited during the fault (%v); want it to ride the fault out", pid, p.ExitErr)
	}
}

// claimNames lists claims first..first+count-1.
func claimNames(first, count int) []string {
	names := make([]string, count)
	for i := range names {
		names[i] = claimName(first + i)
	}
	return names
}

// runCommand runs a shell command and returns its combined output.
func runCommand(ctx context.Context, command string) (string, error) {
	output, err := exec.CommandContext(ctx, "/bin/sh", "-c", command).CombinedOutput()
	return string(output), err
}

// ganesha is the test bed's NFS-Ganesha process, for signals the scripts do not send.
type ganesha struct{ pidFile string }

func testbedGanesha(t *testing.T) ganesha {
	t.Helper()
	return ganesha{pidFile: filepath.Join(testbedDir(t), "pids", "ganesha.pid")}
}

func (g ganesha) pid(t *testing.T) int {
	t.Helper()
	content, err := os.ReadFile(g.pidFile)
	if err != nil {
		t.Fatalf("reading Ganesha's pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(content)))
	if err != nil {
		t.Fatalf("Ganesha's pid file %s: %v", g.pidFile, err)
	}
	return pid
}

func (g ganesha) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(g.pid(t), sig); err != nil {
		t.Fatalf("sending %v to Ganesha: %v", sig, err)
	}
}

// nfsAnswers tells whether the test bed's NFS server answers (its status script).
func nfsAnswers(ctx context.Context) bool {
	_, err := runCommand(ctx, strings.Replace(fw.Env.NFSStartCommand, " start", " status", 1))
	return err == nil
}

// restoreNFSOnCleanup makes sure the NFS server is running (and not stopped) when the test ends,
// whatever happened.
func restoreNFSOnCleanup(t *testing.T) {
	t.Helper()
	g := testbedGanesha(t)
	t.Cleanup(func() {
		if content, err := os.ReadFile(g.pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(content))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if nfsAnswers(ctx) {
			return
		}
		if output, err := runCommand(ctx, fw.Env.NFSStartCommand); err != nil {
			t.Errorf("restarting the NFS server after the test: %v\n%s", err, output)
		}
	})
}

// guardOtherE2E refuses to disrupt the bed while another e2e test binary (not this one) runs.
func guardOtherE2E(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + entry.Name() + "/cmdline")
		if err != nil {
			continue
		}
		argv0 := strings.SplitN(string(cmdline), "\x00", 2)[0]
		if isSuiteBinary(path.Base(argv0)) && os.Getenv("E2E_FAULT_IGNORE_OTHERS") != "1" {
			t.Skipf("another e2e test binary runs (pid %d); not disrupting the shared test bed (E2E_FAULT_IGNORE_OTHERS=1 overrides)", pid)
		}
	}
}

// isSuiteBinary tells whether a command is the test binary of one of the e2e suites.
func isSuiteBinary(name string) bool {
	switch name {
	case "functional.test", "fault.test", "bench.test":
		return true
	}
	return false
}
