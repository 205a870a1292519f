// Package metrics holds the provisioner's own Prometheus metrics: NFS
// operation latency and round trips by server, operation and result. The
// library's provision/delete metrics are registered beside them.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/usage"
)

const namespace = "nfs_subdir_provisioner"

// NFS collects NFS round-trip metrics.
type NFS struct {
	Duration *prometheus.HistogramVec
	Removed  *prometheus.CounterVec
	// Export capacity, by server and share, from FSSTAT each interval.
	ExportSize, ExportFree, ExportAvailable *prometheus.GaugeVec
	ExportInodes, ExportFreeInodes          *prometheus.GaugeVec
	// ExportVersion is 1 for each export and the NFS version it was opened over (what auto chose).
	ExportVersion *prometheus.GaugeVec
	// Per volume, labelled as kubelet_volume_stats_* are.
	VolumeUsed, VolumeInodes, VolumeCapacity *prometheus.GaugeVec
	ScanDuration                             prometheus.Gauge
	ScanErrors                               prometheus.Counter
	// Archives recorded for archiveRetention, and those purged, by StorageClass.
	Archives       *prometheus.GaugeVec
	ArchivesPurged *prometheus.CounterVec
	// Clones: copies running, bytes copied by target server, and how long copies took.
	ClonesInFlight prometheus.Gauge
	CloneBytes     *prometheus.CounterVec
	CloneDuration  *prometheus.HistogramVec
}

// NewNFS creates the NFS metrics and registers them with reg.
func NewNFS(reg prometheus.Registerer) *NFS {
	m := &NFS{
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "nfs_operation_duration_seconds",
			Help:      "Latency of NFS round trips (one RPC each) by server, operation and result; its _count is the number of round trips.",
			Buckets:   []float64{0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"server", "operation", "result"}),
	}
	m.Removed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "removed_entries_total",
		Help:      "Entries removed from volume directories deleted with onDelete=delete, by server and type (file: anything but a directory; dir), counted as a removal goes.",
	}, []string{"server", "type"})
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, []string{"server", "share"})
	}
	m.ExportSize = gauge("export_size_bytes", "Size of the export's filesystem (FSSTAT tbytes), read every --usage-interval.")
	m.ExportFree = gauge("export_free_bytes", "Free bytes of the export's filesystem (FSSTAT fbytes).")
	m.ExportAvailable = gauge("export_available_bytes", "Bytes of the export's filesystem available to an unprivileged user (FSSTAT abytes).")
	m.ExportInodes = gauge("export_total_inodes", "Inodes of the export's filesystem (FSSTAT tfiles).")
	m.ExportFreeInodes = gauge("export_free_inodes", "Free inodes of the export's filesystem (FSSTAT ffiles).")
	m.ExportVersion = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "export_nfs_version",
		Help: "1 for each export and the NFS version (3, 4.1) the provisioner opened it over: what the class or NFS_VERSION asked for, or what auto chose."}, []string{"server", "share", "version"})
	volume := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, []string{"namespace", "persistentvolumeclaim", "persistentvolume"})
	}
	m.VolumeUsed = volume("volume_used_bytes", "Space a volume's directory tree uses on the server (READDIRPLUS used), from the last usage scan.")
	m.VolumeInodes = volume("volume_used_inodes", "Files and directories in a volume's directory tree, from the last usage scan.")
	m.VolumeCapacity = volume("volume_capacity_bytes", "A volume's capacity: its claim's request (NFS does not enforce it).")
	m.ScanDuration = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "usage_scan_duration_seconds", Help: "How long the last usage scan of every volume took."})
	m.Archives = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "archives", Help: "Archives recorded for purging after their class's archiveRetention, by StorageClass, after the last sweep."}, []string{"storageclass"})
	m.ArchivesPurged = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "archives_purged_total", Help: "Archives removed by the sweeper after their class's archiveRetention, by StorageClass."}, []string{"storageclass"})
	m.ScanErrors = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "usage_scan_errors_total", Help: "Volumes whose usage a scan could not read."})
	m.ClonesInFlight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "clones_in_flight", Help: "Clones (claims with a PVC data source) being copied now."})
	m.CloneBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "clone_copied_bytes_total", Help: "File content copied by clones, by target server, counted as a copy goes."}, []string{"server"})
	m.CloneDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "clone_duration_seconds", Help: "How long clones' copies took, by result.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 10)}, []string{"result"})
	reg.MustRegister(m.ClonesInFlight, m.CloneBytes, m.CloneDuration)
	reg.MustRegister(m.Duration, m.Removed, m.ExportSize, m.ExportFree, m.ExportAvailable, m.ExportInodes, m.ExportFreeInodes, m.ExportVersion,
		m.VolumeUsed, m.VolumeInodes, m.VolumeCapacity, m.ScanDuration, m.ScanErrors, m.Archives, m.ArchivesPurged)
	return m
}

// VolumeUsage replaces the per-volume gauges with a scan's results
// (usage.Observer): volumes gone since the last scan drop out.
func (m *NFS) VolumeUsage(volumes []usage.VolumeUsage, took time.Duration, failed int) {
	m.VolumeUsed.Reset()
	m.VolumeInodes.Reset()
	m.VolumeCapacity.Reset()
	for _, v := range volumes {
		m.VolumeUsed.WithLabelValues(v.Namespace, v.Claim, v.PV).Set(float64(v.Used.Bytes))
		m.VolumeInodes.WithLabelValues(v.Namespace, v.Claim, v.PV).Set(float64(v.Used.Inodes))
		m.VolumeCapacity.WithLabelValues(v.Namespace, v.Claim, v.PV).Set(float64(v.CapacityBytes))
	}
	m.ScanDuration.Set(took.Seconds())
	m.ScanErrors.Add(float64(failed))
}

// ExportOpened records the NFS version an export was opened over (wire.Options.Opened).
func (m *NFS) ExportOpened(server, share, version string) {
	m.ExportVersion.WithLabelValues(server, share, version).Set(1)
}

// ExportCapacity records an export's FSSTAT (usage.Observer).
func (m *NFS) ExportCapacity(server, share string, c export.Capacity) {
	m.ExportSize.WithLabelValues(server, share).Set(float64(c.SizeBytes))
	m.ExportFree.WithLabelValues(server, share).Set(float64(c.FreeBytes))
	m.ExportAvailable.WithLabelValues(server, share).Set(float64(c.AvailableBytes))
	m.ExportInodes.WithLabelValues(server, share).Set(float64(c.TotalInodes))
	m.ExportFreeInodes.WithLabelValues(server, share).Set(float64(c.FreeInodes))
}

// ArchivesSwept sets the archive gauges after a sweep (usage.Observer).
func (m *NFS) ArchivesSwept(recorded, purged map[string]int) {
	m.Archives.Reset()
	for class, n := range recorded {
		m.Archives.WithLabelValues(class).Set(float64(n))
	}
	for class, n := range purged {
		m.ArchivesPurged.WithLabelValues(class).Add(float64(n))
	}
}

// RemovedEntries counts entries a Delete removed (usage.Observer).
func (m *NFS) RemovedEntries(server string, files, dirs uint64) {
	m.Removed.WithLabelValues(server, "file").Add(float64(files))
	m.Removed.WithLabelValues(server, "dir").Add(float64(dirs))
}

// Observe records one round trip; result is a short, fixed label such as
// "ok", "timeout" or an NFS status name (wire.Result).
func (m *NFS) Observe(server, op string, d time.Duration, result string) {
	m.Duration.WithLabelValues(server, op, result).Observe(d.Seconds())
}

// ClonesRunning implements clone.Observer.
func (m *NFS) ClonesRunning(delta int) { m.ClonesInFlight.Add(float64(delta)) }

// CloneCopied implements clone.Observer.
func (m *NFS) CloneCopied(server string, bytes uint64) {
	m.CloneBytes.WithLabelValues(server).Add(float64(bytes))
}

// CloneEnded implements clone.Observer.
func (m *NFS) CloneEnded(took time.Duration, err error) {
	result := "copied"
	if err != nil {
		result = "failed"
	}
	m.CloneDuration.WithLabelValues(result).Observe(took.Seconds())
}
