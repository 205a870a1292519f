//go:build e2e

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// The provisioning benchmark (make bench). It runs only with E2E_BENCH=1 (TestMain), so that make
// test does not; enabled, every error fails it. It reports figures and never asserts timing.
//
//	E2E_BENCH=1                  run it
//	E2E_BENCH_CLAIMS=100,1000    claim counts, one run each (claims created at once)
//	E2E_BENCH_CACHED=10000       PV+PVC pairs cached for the memory run; 0 skips that run
//	E2E_BENCH_CACHED_CLAIMS=100  claims provisioned during the memory run
//	E2E_BENCH_LABEL=...          a note for the table (e.g. "KCM at default QPS")
//	E2E_BENCH_PROVISIONER_ARGS   extra flags for the provisioner under test, space-separated
//	E2E_BENCH_CREATE_WORKERS=64  concurrent create/delete requests of the harness
//	E2E_BENCH_SCAN_FILES=100000  the scan run: 100 claims with no usage scan, then 100 during a
//	                             scan of a volume of this many files; 0 skips it
//	E2E_BENCH_OUT=<file>         also append the table to this file
//
// Each run starts its own provisioner process, with its own PROVISIONER_NAME and StorageClass,
// so no other provisioner acts on its claims; it authenticates with the ServiceAccount of
// deploy/rbac.yaml.
func TestBenchmark(t *testing.T) {
	cfg, err := loadBenchConfig()
	if err != nil {
		t.Fatal(err)
	}
	b := newBench(t, cfg)
	t.Cleanup(func() {
		// The leader-election Lease of the provisioners under test (released, but still there).
		lease := strings.ReplaceAll(b.provisionerName(), "/", "-")
		err := b.client.CoordinationV1().Leases(framework.ProvisionerNamespace).Delete(context.Background(), lease, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting Lease %s/%s: %v", framework.ProvisionerNamespace, lease, err)
		}
	})
	var results []benchResult
	// Each run is a subtest, so that it cleans up (claims, archives, class, namespace) before the
	// next one starts.
	if len(cfg.claimCounts) > 0 {
		prov := b.startProvisioner(t, "claims")
		for _, n := range cfg.claimCounts {
			name := fmt.Sprintf("N=%d", n)
			t.Run(name, func(t *testing.T) {
				results = append(results, b.runClaims(t, prov, n, name))
			})
		}
		b.stopProvisioner(t, prov)
	}
	if cfg.cached > 0 {
		t.Run(fmt.Sprintf("cached=%d", cfg.cached), func(t *testing.T) {
			results = append(results, b.runCached(t, cfg.cached, cfg.cachedClaims))
		})
	}
	if cfg.scanFiles > 0 {
		results = append(results, b.runScan(t, cfg.scanFiles, 100)...)
	}
	b.printTable(results)
}

type benchConfig struct {
	claimCounts   []int
	cached        int
	cachedClaims  int
	scanFiles     int
	label         string
	extraArgs     []string
	createWorkers int
	outFile       string
}

func loadBenchConfig() (benchConfig, error) {
	cfg := benchConfig{cached: 10000, cachedClaims: 100, createWorkers: 64, claimCounts: []int{100, 1000}}
	if v := os.Getenv("E2E_BENCH_CLAIMS"); v != "" {
		cfg.claimCounts = nil
		for _, field := range strings.Split(v, ",") {
			field = strings.TrimSpace(field)
			if field == "" || field == "0" {
				continue
			}
			n, err := strconv.Atoi(field)
			if err != nil || n < 0 {
				return cfg, fmt.Errorf("E2E_BENCH_CLAIMS=%q: want comma-separated claim counts", v)
			}
			cfg.claimCounts = append(cfg.claimCounts, n)
		}
	}
	for name, dst := range map[string]*int{"E2E_BENCH_CACHED": &cfg.cached, "E2E_BENCH_CACHED_CLAIMS": &cfg.cachedClaims, "E2E_BENCH_CREATE_WORKERS": &cfg.createWorkers, "E2E_BENCH_SCAN_FILES": &cfg.scanFiles} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return cfg, fmt.Errorf("%s=%q: want a number", name, v)
			}
			*dst = n
		}
	}
	if cfg.createWorkers < 1 {
		cfg.createWorkers = 1
	}
	cfg.label = os.Getenv("E2E_BENCH_LABEL")
	cfg.extraArgs = strings.Fields(os.Getenv("E2E_BENCH_PROVISIONER_ARGS"))
	cfg.outFile = os.Getenv("E2E_BENCH_OUT")
	return cfg, nil
}

// bench holds what all runs share: a fast admin client and the provisioner's kubeconfig.
type bench struct {
	cfg        benchConfig
	client     kubernetes.Interface
	workDir    string
	kubeconfig string // the provisioner's ServiceAccount kubeconfig
	runID      string
	started    time.Time
	keepPeak   bool // the memory run: peak RSS since the provisioner started
	runs       int
}

func newBench(t *testing.T, cfg benchConfig) *bench {
	restConfig, err := clientcmd.BuildConfigFromFlags("", fw.Env.Kubeconfig)
	if err != nil {
		t.Fatalf("admin kubeconfig: %v", err)
	}
	// The harness must not be what limits the figures: no client-side throttling.
	restConfig.QPS, restConfig.Burst = 5000, 5000
	// Protobuf, like the controller-manager and the provisioner: the harness's own watches must
	// cost the API server as little as possible.
	restConfig.ContentType = "application/vnd.kubernetes.protobuf"
	restConfig.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	workDir := t.TempDir()
	kubeconfig, err := fw.Cluster.ServiceAccountKubeconfig(framework.Context(t), workDir)
	if err != nil {
		t.Fatal(err)
	}
	return &bench{cfg: cfg, client: client, workDir: workDir, kubeconfig: kubeconfig, runID: rand.String(5), started: time.Now()}
}

// provisionerName of the provisioner under test: its own, so the shared one ignores its claims.
func (b *bench) provisionerName() string { return "nfs-subdir-provisioner.io/bench-" + b.runID }

// startProvisioner runs the binary as a user would (the anchor's env, leader election on) plus
// E2E_BENCH_PROVISIONER_ARGS and args, and waits for /readyz.
func (b *bench) startProvisioner(t *testing.T, tag string, args ...string) *framework.Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(framework.Context(t), 2*time.Minute)
	defer cancel()
	logPath := filepath.Join(b.workDir, "provisioner-"+tag+".log")
	process, err := fw.StartProvisioner(ctx, framework.ProcessOptions{
		Name: b.provisionerName(), Kubeconfig: b.kubeconfig, Args: append(append([]string(nil), b.cfg.extraArgs...), args...), LogPath: logPath, WaitReady: true,
	})
	if err != nil {
		framework.PrintFile(logPath)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if process.Running() {
			_ = process.Stop()
		}
		if t.Failed() {
			framework.PrintFile(logPath)
		}
	})
	return process
}

func (b *bench) stopProvisioner(t *testing.T, p *framework.Process) {
	t.Helper()
	if err := p.Stop(); err != nil {
		t.Errorf("stopping the provisioner under test: %v", err)
	}
}

// createBenchClass makes a StorageClass of the provisioner under test (default parameters: archive
// on delete, reclaim policy Delete) and deletes it at the end.
func (b *bench) createBenchClass(t *testing.T, tag string) string {
	t.Helper()
	class := framework.NewClass(framework.ClassOptions{Name: "nfsp-bench-" + b.runID + "-" + tag, Provisioner: b.provisionerName()})
	if _, err := b.client.StorageV1().StorageClasses().Create(framework.Context(t), class, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating StorageClass %s: %v", class.Name, err)
	}
	t.Cleanup(func() {
		err := b.client.StorageV1().StorageClasses().Delete(context.Background(), class.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting StorageClass %s: %v", class.Name, err)
		}
	})
	return class.Name
}

// benchResult is one row of the table.
type benchResult struct {
	name, note string
	n          int

	// Since the first create request, the time until the last claim was created, carried the
	// controller-manager's storage-provisioner annotation (the provisioner's go signal), had its PV,
	// and was Bound; and since the first delete request, until the last PV was gone.
	created, annotated, pvs, bound, deleted time.Duration

	provP50, provP99, provWithin50ms float64       // library framework.Histogram: claim picked up → PV saved, seconds
	seenP50, seenP99                 time.Duration // harness: annotation seen → PV seen
	delP50, delP99                   float64       // library framework.Histogram: PV picked up → PV deleted
	cpuProvision, cpuDelete          float64       // CPU seconds of the provisioner per phase
	peakRSS, rssAfter                int64
	heapInuse, heapAlloc, nextGC     float64
	rtProvision, rtDelete            map[string]float64  // client-side NFS round trips by operation
	nfsProvision, nfsDelete          framework.Histogram // their latency
	bedProvision, bedDelete          bedCPU              // CPU of the test bed's components
	provisionFailures                float64
	dirsMade, dirsArchived, dirsLeft int // server side: entries in the export's directory
	pcap                             *pcapCounts
}

// claimTracker times every claim of one namespace through informers (no polling of the API).
type claimTracker struct {
	mu                               sync.Mutex
	namespace                        string
	annotated, pvSeen, bound, pvGone map[string]time.Time // by claim name
	pvClaim                          map[string]string    // PV name → claim name
	stop                             chan struct{}
}

func newClaimTracker(t *testing.T, client kubernetes.Interface, namespace string) *claimTracker {
	ct := &claimTracker{
		namespace: namespace,
		annotated: map[string]time.Time{}, pvSeen: map[string]time.Time{}, bound: map[string]time.Time{},
		pvGone: map[string]time.Time{}, pvClaim: map[string]string{}, stop: make(chan struct{}),
	}
	stripManagedFields := func(obj any) (any, error) {
		if accessor, ok := obj.(metav1.ObjectMetaAccessor); ok {
			accessor.GetObjectMeta().SetManagedFields(nil)
		}
		return obj, nil
	}
	claims := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace), informers.WithTransform(stripManagedFields))
	volumes := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(stripManagedFields))
	claimInformer := claims.Core().V1().PersistentVolumeClaims().Informer()
	volumeInformer := volumes.Core().V1().PersistentVolumes().Informer()
	onClaim := func(obj any) {
		claim, ok := obj.(*corev1.PersistentVolumeClaim)
		if !ok {
			return
		}
		now := time.Now()
		ct.mu.Lock()
		defer ct.mu.Unlock()
		if _, seen := ct.annotated[claim.Name]; !seen && (claim.Annotations["volume.kubernetes.io/storage-provisioner"] != "" || claim.Annotations["volume.beta.kubernetes.io/storage-provisioner"] != "") {
			ct.annotated[claim.Name] = now
		}
		if _, seen := ct.bound[claim.Name]; !seen && claim.Status.Phase == corev1.ClaimBound {
			ct.bound[claim.Name] = now
		}
	}
	onVolume := func(obj any, gone bool) {
		if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tombstone.Obj
		}
		volume, ok := obj.(*corev1.PersistentVolume)
		if !ok || volume.Spec.ClaimRef == nil || volume.Spec.ClaimRef.Namespace != namespace {
			return
		}
		now := time.Now()
		claimName := volume.Spec.ClaimRef.Name
		ct.mu.Lock()
		defer ct.mu.Unlock()
		ct.pvClaim[volume.Name] = claimName
		if _, seen := ct.pvSeen[claimName]; !seen {
			ct.pvSeen[claimName] = now
		}
		if _, seen := ct.pvGone[claimName]; gone && !seen {
			ct.pvGone[claimName] = now
		}
	}
	_, err1 := claimInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onClaim,
		UpdateFunc: func(_, obj any) { onClaim(obj) },
	})
	_, err2 := volumeInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { onVolume(obj, false) },
		UpdateFunc: func(_, obj any) { onVolume(obj, false) },
		DeleteFunc: func(obj any) { onVolume(obj, true) },
	})
	if err1 != nil || err2 != nil {
		t.Fatalf("informer handlers: %v %v", err1, err2)
	}
	claims.Start(ct.stop)
	volumes.Start(ct.stop)
	t.Cleanup(func() { close(ct.stop); claims.Shutdown(); volumes.Shutdown() })
	ctx, cancel := context.WithTimeout(framework.Context(t), 5*time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), claimInformer.HasSynced, volumeInformer.HasSynced) {
		t.Fatal("the benchmark's informers did not sync within 5 minutes")
	}
	return ct
}

func (ct *claimTracker) counts() (annotated, pvs, bound, gone int) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return len(ct.annotated), len(ct.pvSeen), len(ct.bound), len(ct.pvGone)
}

// latest is how long after start the last of the times in m happened.
func latest(m map[string]time.Time, start time.Time) time.Duration {
	var last time.Time
	for _, at := range m {
		if at.After(last) {
			last = at
		}
	}
	if last.IsZero() {
		return 0
	}
	return last.Sub(start)
}

func benchClaimName(i int) string { return fmt.Sprintf("bench-%05d", i) }

// runClaims is one run: n claims created at once, provisioned, bound, deleted, archived.
func (b *bench) runClaims(t *testing.T, prov *framework.Process, n int, name string) benchResult {
	t.Helper()
	result := benchResult{name: name, note: b.cfg.label, n: n}
	pid := prov.Cmd.Process.Pid
	b.runs++
	className := b.createBenchClass(t, strconv.Itoa(b.runs))
	namespace := fw.CreateNamespace(t, "bench")
	tracker := newClaimTracker(t, b.client, namespace)
	t.Cleanup(func() { b.cleanUpClaims(t, namespace, tracker) })
	// Generous bounds: at the controller-manager's default QPS, 1,000 claims take minutes to bind.
	timeout := 5*time.Minute + time.Duration(n)*500*time.Millisecond

	capture := startPcap(t, b.workDir, name, pid)
	before := b.scrapeAndStat(t, prov)
	if !b.keepPeak {
		if err := resetPeakRSS(pid); err != nil {
			t.Logf("cannot reset the peak RSS (figures are peaks since start): %v", err)
		}
	}

	// Provision.
	bedBefore := readBedCPU(pid)
	start := time.Now()
	b.forEach(t, n, func(ctx context.Context, i int) error {
		_, err := b.client.CoreV1().PersistentVolumeClaims(namespace).Create(ctx, framework.NewClaim(namespace, framework.ClaimOptions{Name: benchClaimName(i), Class: className}), metav1.CreateOptions{})
		return err
	})
	result.created = time.Since(start)
	framework.Poll(t, fmt.Sprintf("%d PVs", n), timeout, func(context.Context) (bool, error) {
		_, pvs, _, _ := tracker.counts()
		return pvs == n, fmt.Errorf("%d of %d PVs", pvs, n)
	})
	framework.Poll(t, fmt.Sprintf("%d claims Bound", n), timeout, func(context.Context) (bool, error) {
		_, _, bound, _ := tracker.counts()
		return bound == n, fmt.Errorf("%d of %d claims Bound", bound, n)
	})
	provisioned := b.scrapeAndStat(t, prov)
	bedProvisioned := readBedCPU(pid)
	result.bedProvision = bedProvisioned.minus(bedBefore)
	tracker.mu.Lock()
	result.annotated = latest(tracker.annotated, start)
	result.pvs = latest(tracker.pvSeen, start)
	result.bound = latest(tracker.bound, start)
	var seenToPV []time.Duration
	for claim, pvAt := range tracker.pvSeen {
		if annotatedAt, ok := tracker.annotated[claim]; ok {
			seenToPV = append(seenToPV, pvAt.Sub(annotatedAt))
		}
	}
	tracker.mu.Unlock()
	result.seenP50, result.seenP99 = durationQuantile(seenToPV, 0.5), durationQuantile(seenToPV, 0.99)
	result.dirsMade = len(fw.DefaultExport().Names(t, namespace+"-"))
	provisionRT := capture.checkpoint()

	// Delete (archive: the class's default).
	deleteStart := time.Now()
	b.forEach(t, n, func(ctx context.Context, i int) error {
		err := b.client.CoreV1().PersistentVolumeClaims(namespace).Delete(ctx, benchClaimName(i), metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	framework.Poll(t, fmt.Sprintf("%d PVs deleted", n), timeout, func(context.Context) (bool, error) {
		_, _, _, gone := tracker.counts()
		return gone == n, fmt.Errorf("%d of %d PVs deleted", gone, n)
	})
	tracker.mu.Lock()
	result.deleted = latest(tracker.pvGone, deleteStart)
	tracker.mu.Unlock()
	deleted := b.scrapeAndStat(t, prov)
	result.bedDelete = readBedCPU(pid).minus(bedProvisioned)
	deleteRT := capture.checkpoint()
	result.pcap = capture.finish(t, provisionRT, deleteRT)
	result.dirsArchived = len(fw.DefaultExport().Names(t, "archived-"+namespace+"-"))
	result.dirsLeft = len(fw.DefaultExport().Names(t, namespace+"-"))

	classMatch := map[string]string{"class": className}
	provHist := provisioned.metrics.Histogram("controller_persistentvolumeclaim_provision_duration_seconds", classMatch).
		Minus(before.metrics.Histogram("controller_persistentvolumeclaim_provision_duration_seconds", classMatch))
	result.provP50, result.provP99, result.provWithin50ms = provHist.Quantile(0.5), provHist.Quantile(0.99), provHist.FractionWithin(0.05)
	result.provisionFailures = provisioned.metrics.Sum("controller_persistentvolumeclaim_provision_failed_total", classMatch) -
		before.metrics.Sum("controller_persistentvolumeclaim_provision_failed_total", classMatch)
	delHist := deleted.metrics.Histogram("controller_persistentvolume_delete_duration_seconds", classMatch).
		Minus(provisioned.metrics.Histogram("controller_persistentvolume_delete_duration_seconds", classMatch))
	result.delP50, result.delP99 = delHist.Quantile(0.5), delHist.Quantile(0.99)
	result.rtProvision = diffCounts(provisioned.metrics, before.metrics)
	result.rtDelete = diffCounts(deleted.metrics, provisioned.metrics)
	const nfsHist = "nfs_subdir_provisioner_nfs_operation_duration_seconds"
	result.nfsProvision = provisioned.metrics.Histogram(nfsHist, nil).Minus(before.metrics.Histogram(nfsHist, nil))
	result.nfsDelete = deleted.metrics.Histogram(nfsHist, nil).Minus(provisioned.metrics.Histogram(nfsHist, nil))
	result.cpuProvision = provisioned.proc.cpuSeconds - before.proc.cpuSeconds
	result.cpuDelete = deleted.proc.cpuSeconds - provisioned.proc.cpuSeconds
	result.peakRSS, result.rssAfter = deleted.proc.hwmBytes, deleted.proc.rssBytes
	result.heapInuse = deleted.metrics.Sum("go_memstats_heap_inuse_bytes", nil)
	result.heapAlloc = deleted.metrics.Sum("go_memstats_heap_alloc_bytes", nil)
	result.nextGC = deleted.metrics.Sum("go_memstats_next_gc_bytes", nil)

	// Outcomes, checked so that a broken run cannot pass for a fast one.
	if result.dirsMade != n || result.dirsArchived != n || result.dirsLeft != 0 {
		t.Errorf("%s: export has %d directories made, %d archived, %d left; want %d, %d, 0",
			name, result.dirsMade, result.dirsArchived, result.dirsLeft, n, n)
	}
	return result
}

const nfsOpMetric = "nfs_subdir_provisioner_nfs_operation_duration_seconds" // its count by operation

func diffCounts(after, before framework.Metrics) map[string]float64 {
	out := map[string]float64{}
	prior := before.SumBy(nfsOpMetric, "operation", nil)
	for op, count := range after.SumBy(nfsOpMetric, "operation", nil) {
		if d := count - prior[op]; d > 0 {
			out[op] = d
		}
	}
	return out
}

type observation struct {
	metrics framework.Metrics
	proc    procStats
}

func (b *bench) scrapeAndStat(t *testing.T, p *framework.Process) observation {
	t.Helper()
	metrics, err := p.Metrics(framework.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	proc, err := readProcStats(p.Cmd.Process.Pid)
	if err != nil {
		t.Fatalf("reading /proc of the provisioner: %v", err)
	}
	return observation{metrics: metrics, proc: proc}
}

// forEach runs fn(0..n-1) on cfg.createWorkers goroutines and fails the test on the first error.
func (b *bench) forEach(t *testing.T, n int, fn func(ctx context.Context, i int) error) {
	t.Helper()
	if err := framework.ForEach(framework.Context(t), b.cfg.createWorkers, n, fn); err != nil {
		t.Fatal(err)
	}
}

// cleanUpClaims deletes what a run left (after a failure midway) while its provisioner still runs,
// waits for the PVs to go, and removes the run's directories and archives from the export.
func (b *bench) cleanUpClaims(t *testing.T, namespace string, tracker *claimTracker) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := b.client.CoreV1().PersistentVolumeClaims(namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting the claims of %s: %v", namespace, err)
	}
	err = wait.PollUntilContextCancel(ctx, time.Second, true, func(context.Context) (bool, error) {
		_, pvs, _, gone := tracker.counts()
		return gone >= pvs, nil
	})
	if err != nil {
		_, pvs, _, gone := tracker.counts()
		t.Errorf("cleanup: %d of %d PVs of %s still exist after 5 minutes", pvs-gone, pvs, namespace)
	}
	entries, err := os.ReadDir(fw.Env.ExportDir)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, entry := range entries {
		if strings.HasPrefix(entry.Name(), namespace+"-") || strings.HasPrefix(entry.Name(), "archived-"+namespace+"-") {
			if err := os.RemoveAll(filepath.Join(fw.Env.ExportDir, entry.Name())); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	}
}

// printTable prints the results (and appends them to E2E_BENCH_OUT).
func (b *bench) printTable(results []benchResult) {
	var s strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&s, "\nnfs-subdir-provisioner benchmark (%s, %s, run %s)\n", host, time.Now().UTC().Format(time.RFC3339), b.runID)
	if b.cfg.label != "" {
		fmt.Fprintf(&s, "note: %s\n", b.cfg.label)
	}
	if len(b.cfg.extraArgs) > 0 {
		fmt.Fprintf(&s, "provisioner args: %s\n", strings.Join(b.cfg.extraArgs, " "))
	}
	fmt.Fprintf(&s, "%-22s %6s %8s %9s %8s %8s %8s %8s %13s %13s %11s %9s %9s %9s %14s %14s\n",
		"run", "claims", "created", "annotated", "PVs", "Bound", "deleted", "PVs/s",
		"prov p50/p99", "seen→PV p50/99", "≤50ms", "del p99", "CPU s", "peak RSS", "NFS RT/prov", "NFS RT/delete")
	for _, r := range results {
		fmt.Fprintf(&s, "%-22s %6d %7.1fs %8.1fs %7.1fs %7.1fs %7.1fs %8.0f %13s %13s %10.1f%% %8.0fms %9.1f %6.0fMiB %14s %14s\n",
			r.name, r.n, r.created.Seconds(), r.annotated.Seconds(), r.pvs.Seconds(), r.bound.Seconds(), r.deleted.Seconds(),
			float64(r.n)/r.pvs.Seconds(),
			fmt.Sprintf("%.0f/%.0fms", r.provP50*1000, r.provP99*1000),
			fmt.Sprintf("%.0f/%.0fms", float64(r.seenP50.Microseconds())/1000, float64(r.seenP99.Microseconds())/1000),
			r.provWithin50ms*100, r.delP99*1000, r.cpuProvision+r.cpuDelete, float64(r.peakRSS)/mib,
			perOp(r.rtProvision, r.n), perOp(r.rtDelete, r.n))
	}
	fmt.Fprintln(&s, "\ndetails:")
	for _, r := range results {
		fmt.Fprintf(&s, "  %s: NFS round trips (client, wire metric) provisioning %s; deleting %s; provision failures %.0f\n",
			r.name, opList(r.rtProvision), opList(r.rtDelete), r.provisionFailures)
		fmt.Fprintf(&s, "  %s: NFS round-trip latency p50/p99 provisioning %.1f/%.1fms, deleting %.1f/%.1fms\n",
			r.name, r.nfsProvision.Quantile(0.5)*1000, r.nfsProvision.Quantile(0.99)*1000, r.nfsDelete.Quantile(0.5)*1000, r.nfsDelete.Quantile(0.99)*1000)
		fmt.Fprintf(&s, "  %s: CPU while provisioning+binding: %s\n", r.name, r.bedProvision)
		fmt.Fprintf(&s, "  %s: CPU while deleting: %s\n", r.name, r.bedDelete)
		if r.pcap != nil {
			fmt.Fprintf(&s, "  %s: NFS calls on the wire (tcpdump, server side of the provisioner's connections) provisioning %s; deleting %s%s\n",
				r.name, opList(r.pcap.provision), opList(r.pcap.delete), r.pcap.note)
		}
		fmt.Fprintf(&s, "  %s: export directory: %d made, %d archived, %d left; CPU %.1fs provisioning + %.1fs deleting; RSS peak %.0f MiB, after %.0f MiB, Go heap in use %.0f MiB (allocated %.0f MiB, next GC at %.0f MiB); delete p50 %.0fms\n",
			r.name, r.dirsMade, r.dirsArchived, r.dirsLeft, r.cpuProvision, r.cpuDelete,
			float64(r.peakRSS)/mib, float64(r.rssAfter)/mib, r.heapInuse/mib, r.heapAlloc/mib, r.nextGC/mib, r.delP50*1000)
	}
	fmt.Print(s.String())
	if b.cfg.outFile != "" {
		if f, err := os.OpenFile(b.cfg.outFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			_, _ = f.WriteString(s.String())
			f.Close()
		}
	}
}

func perOp(counts map[string]float64, n int) string {
	if n == 0 {
		return "-"
	}
	total := 0.0
	for _, c := range counts {
		total += c
	}
	return strconv.FormatFloat(total/float64(n), 'f', 2, 64)
}

func opList(counts map[string]float64) string {
	if len(counts) == 0 {
		return "none"
	}
	ops := make([]string, 0, len(counts))
	for op := range counts {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	parts := make([]string, 0, len(ops))
	for _, op := range ops {
		parts = append(parts, fmt.Sprintf("%s %.0f", op, counts[op]))
	}
	return strings.Join(parts, ", ")
}
