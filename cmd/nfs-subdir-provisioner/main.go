// Command nfs-subdir-provisioner provisions PersistentVolumes as
// subdirectories of NFS exports. main only wires configuration, clients,
// the NFS backend, metrics and the library's controller together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
	libmetrics "sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller/metrics"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/archive"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/clone"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/mounted"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/health"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/metrics"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/resize"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/usage"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	fs := flag.NewFlagSet("nfs-subdir-provisioner", flag.ContinueOnError)
	klog.InitFlags(fs)
	cfg, err := parseConfig(fs, os.Args[1:], os.Getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintf(os.Stderr, "nfs-subdir-provisioner: %v\n", err)
		os.Exit(2)
	case cfg.ShowVersion:
		fmt.Println("nfs-subdir-provisioner", version)
		os.Exit(0)
	}

	tuneGC(os.Getenv, debug.SetGCPercent)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "nfs-subdir-provisioner: %v\n", err)
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func run(ctx context.Context, cfg *Config) error {
	logger := klog.FromContext(ctx)
	logger.Info("starting", "version", version, "provisioner", cfg.ProvisionerName, "server", cfg.NFSServer, "path", cfg.NFSPath, "backend", cfg.Backend)
	client, err := newKubeClient(cfg)
	if err != nil {
		return err
	}
	registry, nfsMetrics, libMetrics := newRegistry()
	opener, closeOpener, err := newOpener(cfg, nfsMetrics)
	if err != nil {
		return err
	}
	defer closeOpener()

	cached := newCaches(client)
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "nfs-subdir-provisioner"})
	parts, err := newParts(ctx, cfg, client, cached, opener, recorder, nfsMetrics)
	if err != nil {
		return err
	}
	ctrl, workers := newController(ctx, cfg, client, parts.provisioner, cached, libMetrics)
	resizer, err := resize.New(client, cached.claims, cached.volumes, cfg.ProvisionerName, recorder, newRateLimiter(cfg))
	if err != nil {
		return err
	}
	// Leader only, like provisioning: all run in the elected function.
	lead := func(ctx context.Context) {
		go resizer.Run(ctx, resizeWorkers)
		go parts.monitor.Run(ctx, cfg.UsageInterval)
		go parts.archives.Sweep(ctx, cfg.ArchiveSweep)
		go parts.clones.Sweep(ctx, cloneSweepInterval)
		ctrl.Run(ctx)
	}

	checker := &health.Checker{Opener: opener, Server: cfg.NFSServer, Share: cfg.NFSPath, Timeout: cfg.NFSTimeout}
	stopHTTP := serveHTTP(ctx, cfg.MetricsAddress, registry, checker)
	defer stopHTTP()

	if err := cached.start(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	if !cfg.LeaderElection {
		lead(ctx)
	} else if err := runElected(ctx, cfg, client, lead); err != nil {
		return err
	}
	waitTimeout(workers, 30*time.Second)
	logger.Info("stopped")
	return nil
}

// newKubeClient is the API client: protobuf, the configured rate, our user agent.
func newKubeClient(cfg *Config) (kubernetes.Interface, error) {
	restConfig, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config (KUBECONFIG=%q): %w", cfg.Kubeconfig, err)
	}
	restConfig.QPS = float32(cfg.KubeAPIQPS)
	restConfig.Burst = cfg.KubeAPIBurst
	restConfig.UserAgent = "nfs-subdir-provisioner/" + version
	useProtobuf(restConfig)
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return client, nil
}

// caches are the shared informers of PVs, claims and classes.
type caches struct {
	factory                  informers.SharedInformerFactory
	volumes, claims, classes cache.SharedIndexInformer
}

func newCaches(client kubernetes.Interface) *caches {
	factory := informers.NewSharedInformerFactoryWithOptions(client, controller.DefaultResyncPeriod,
		informers.WithTransform(cacheTransform))
	return &caches{
		factory: factory,
		volumes: factory.Core().V1().PersistentVolumes().Informer(),
		claims:  factory.Core().V1().PersistentVolumeClaims().Informer(),
		classes: factory.Storage().V1().StorageClasses().Informer(),
	}
}

// start runs the informers and waits for their caches (nil, and nothing done, when ctx ends first).
func (c *caches) start(ctx context.Context) error {
	c.factory.Start(ctx.Done())
	for typ, ok := range c.factory.WaitForCacheSync(ctx.Done()) {
		if !ok && ctx.Err() == nil {
			return fmt.Errorf("cache of %v did not sync", typ)
		}
	}
	return nil
}

// parts are the domain objects: the provisioner the controller calls and the lifecycles whose
// loops the leader runs, on one server gate, one locator and one PV index.
type parts struct {
	provisioner *provisioner.Provisioner
	archives    *archive.Keeper
	clones      *clone.Cloner
	monitor     *usage.Monitor
}

// newParts wires the domain objects, with the volume index on the PV cache and the handler that
// tells the provisioner which PVs the API server has.
func newParts(ctx context.Context, cfg *Config, client kubernetes.Interface, cached *caches, opener export.Opener, recorder record.EventRecorder, nfsMetrics *metrics.NFS) (*parts, error) {
	volumes, err := volume.NewIndex(cached.volumes)
	if err != nil {
		return nil, err
	}
	gate := export.NewGate(opener)
	locator := &volume.Locator{Name: cfg.ProvisionerName, DefaultServer: cfg.NFSServer, DefaultShare: cfg.NFSPath,
		Classes: cached.factory.Storage().V1().StorageClasses().Lister()}
	namespaces := volume.KubeNamespaces{Client: client}
	// One Provision or Delete makes a few NFS calls in a row (a LOOKUP, a MKDIR, a SETATTR when
	// the server changed the mode).
	timeout := callsPerOperation * cfg.NFSTimeout
	p := &parts{
		// Records of archives live in the provisioner's namespace, where no tenant writes.
		archives: archive.New(archive.Config{Gate: gate, Locator: locator, Volumes: volumes,
			Records:    &archive.ConfigMapRecords{Client: client, Namespace: ownNamespace(cfg), Provisioner: cfg.ProvisionerName},
			Namespaces: namespaces, Recorder: recorder, Observe: nfsMetrics,
			Timeout: timeout, RemoveTimeout: cfg.RemoveTimeout, DryRun: cfg.ArchiveSweepDryRun}),
		clones: clone.New(clone.Config{Name: cfg.ProvisionerName, Namespace: ownNamespace(cfg), Gate: gate, Locator: locator, Volumes: volumes,
			Claims:     clone.KubeClaims{Client: client, Lister: cached.factory.Core().V1().PersistentVolumeClaims().Lister()},
			Namespaces: namespaces, Recorder: recorder, Observe: nfsMetrics, Background: ctx,
			Timeout: timeout, RemoveTimeout: cfg.RemoveTimeout}),
		monitor: usage.New(usage.Config{Gate: gate, Locator: locator, Volumes: volumes, Observe: nfsMetrics, Recorder: recorder,
			Timeout: timeout, WalkTimeout: cfg.RemoveTimeout, CallsPerSecond: cfg.UsageCallsPerSecond}),
	}
	p.provisioner = provisioner.New(provisioner.Config{
		Gate: gate, Locator: locator, Defaults: cfg.Defaults, Volumes: volumes, Recorder: recorder,
		Timeout: timeout, RemoveTimeout: cfg.RemoveTimeout, Observe: nfsMetrics,
		Archives: p.archives, Clones: p.clones, Namespaces: namespaces, Version: export.Version(cfg.NFSVersion),
	})
	if _, err := cached.volumes.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: p.provisioner.VolumeSeen}); err != nil {
		return nil, fmt.Errorf("watch PVs: %w", err)
	}
	return p, nil
}

// newController is the library's provision controller around prov, and the wait group of its
// workers.
func newController(ctx context.Context, cfg *Config, client kubernetes.Interface, prov *provisioner.Provisioner, cached *caches, libMetrics libmetrics.Metrics) (*controller.ProvisionController, *sync.WaitGroup) {
	// Retries back off per item from 500ms to --retry-max-delay and never give
	// up: a claim that arrives while its server is down binds when it is back.
	ctrl := controller.NewProvisionController(ctx, libraryClient{client}, cfg.ProvisionerName, prov,
		controller.LeaderElection(false), // done in run, so losing it exits cleanly
		controller.Threadiness(cfg.Workers),
		controller.RateLimiter(newRateLimiter(cfg)),
		// A PV the API server refuses to save (overload, a brief outage) is retried in the
		// background, with the same backoff as claims, until it is saved: the claim's worker is
		// free at once instead of sleeping 10 s between the library's default 5 attempts, after
		// which it would even archive the directory it has just made. The directory stays put
		// meanwhile; a restart re-provisions the claim idempotently (MKDIR of an existing
		// directory succeeds).
		controller.CreateProvisionedPVLimiter(newRateLimiter(cfg)),
		controller.FailedProvisionThreshold(0),
		controller.FailedDeleteThreshold(0),
		controller.ClaimsInformer(cached.claims),
		controller.VolumesInformer(cached.volumes),
		controller.ClassesInformer(cached.classes),
		controller.MetricsInstance(libMetrics),
	)
	workers := &sync.WaitGroup{}
	ctrl.ControllerWaitGroup(workers)
	return ctrl, workers
}

// runElected runs fn while this replica holds the Lease. The Lease has the
// same name as nfs-subdir-external-provisioner's, so old and new replicas
// exclude each other during a switch. Losing the Lease ends the process
// cleanly instead of crashing; SIGTERM releases it for a fast hand-over.
func runElected(ctx context.Context, cfg *Config, client kubernetes.Interface, fn func(context.Context)) error {
	logger := klog.FromContext(ctx)
	host, _ := os.Hostname()
	id := host + "_" + uuid.NewString()
	ns := ownNamespace(cfg)
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: strings.ReplaceAll(cfg.ProvisionerName, "/", "-")},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	lost := false
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   cfg.LeaseDuration,
		RenewDeadline:   cfg.RenewDeadline,
		RetryPeriod:     cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            lock.LeaseMeta.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				logger.Info("became leader", "lease", klog.KRef(ns, lock.LeaseMeta.Name), "identity", id)
				fn(ctx)
			},
			OnStoppedLeading: func() {
				lost = ctx.Err() == nil
			},
		},
	})
	if lost {
		logger.Info("leadership lost; exiting so that the new leader works alone", "lease", klog.KRef(ns, lock.LeaseMeta.Name))
	}
	return nil
}

func inClusterNamespace() string {
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil || strings.TrimSpace(string(b)) == "" {
		return "default"
	}
	return strings.TrimSpace(string(b))
}

// newRegistry registers every metric the binary serves on /metrics: Go and
// process, the provisioning library's, and the provisioner's own.
func newRegistry() (*prometheus.Registry, *metrics.NFS, libmetrics.Metrics) {
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	nfsMetrics := metrics.NewNFS(registry)
	libMetrics := libmetrics.New("controller")
	registry.MustRegister(
		libMetrics.PersistentVolumeClaimProvisionTotal,
		libMetrics.PersistentVolumeClaimProvisionFailedTotal,
		libMetrics.PersistentVolumeClaimProvisionDurationSeconds,
		libMetrics.PersistentVolumeDeleteTotal,
		libMetrics.PersistentVolumeDeleteFailedTotal,
		libMetrics.PersistentVolumeDeleteDurationSeconds,
	)
	return registry, nfsMetrics, libMetrics
}

// newRateLimiter is one queue's retry pacing: per item from 500ms to
// --retry-max-delay, never giving up (a claim that arrives while its server
// is down binds when it is back), and overall at most the API QPS. Each
// queue gets its own, so retries of one kind never use up another's.
func newRateLimiter(cfg *Config) workqueue.TypedRateLimiter[string] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, cfg.RetryMax),
		&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(cfg.KubeAPIQPS), cfg.KubeAPIBurst)},
	)
}

// resizeWorkers is how many claims are expanded at once (each is two or
// three API writes; expansions are rare).
const resizeWorkers = 2

// callsPerOperation bounds the NFS work of one Provision or Delete in
// call timeouts.
const callsPerOperation = 3

func newOpener(cfg *Config, m *metrics.NFS) (export.Opener, func(), error) {
	if cfg.Backend == "mounted" {
		o, err := mounted.New(cfg.MountRoot, cfg.NFSServer, cfg.NFSPath)
		if err != nil {
			return nil, nil, err
		}
		return o, func() { _ = o.Close() }, nil
	}
	o := wire.NewOpener(wire.Options{
		Version:     cfg.NFSVersion,
		OwnerDomain: cfg.OwnerDomain,
		NFSPort:     cfg.NFSPort,
		MountPort:   cfg.MountPort,
		Timeout:     cfg.NFSTimeout,
		SourcePort:  cfg.SourcePort,
		Observer: func(server, op string, d time.Duration, err error) {
			m.Observe(server, op, d, wire.Result(err))
		},
		Opened: func(server, share string, v wire.Version) { m.ExportOpened(server, share, string(v)) },
	})
	return o, func() { _ = o.Close() }, nil
}

// serveHTTP serves /metrics, /healthz and /readyz until ctx ends.
func serveHTTP(ctx context.Context, addr string, reg *prometheus.Registry, checker *health.Checker) func() {
	if addr == "" {
		return func() {}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	checker.Register(mux)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.FromContext(ctx).Error(err, "metrics and health server failed", "address", addr)
		}
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// ownNamespace is the provisioner's namespace: POD_NAMESPACE (--leader-election-namespace), else
// the pod's own, as the Lease and the archive records use it.
func ownNamespace(cfg *Config) string {
	if cfg.LeaderElectionNamespace != "" {
		return cfg.LeaderElectionNamespace
	}
	return inClusterNamespace()
}
