// Package metrics holds the provisioner's own Prometheus metrics: NFS
// operation latency and round trips by server, operation and result. The
// library's provision/delete metrics are registered beside them.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "nfs_subdir_provisioner"

// NFS collects NFS round-trip metrics.
type NFS struct {
	Duration *prometheus.HistogramVec
	Removed  *prometheus.CounterVec
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
	reg.MustRegister(m.Duration, m.Removed)
	return m
}

// RemovedEntries counts entries a Delete removed (provisioner.Observer).
func (m *NFS) RemovedEntries(server string, files, dirs uint64) {
	m.Removed.WithLabelValues(server, "file").Add(float64(files))
	m.Removed.WithLabelValues(server, "dir").Add(float64(dirs))
}

// Observe records one round trip; result is a short, fixed label such as
// "ok", "timeout" or an NFS status name (wire.Result).
func (m *NFS) Observe(server, op string, d time.Duration, result string) {
	m.Duration.WithLabelValues(server, op, result).Observe(d.Seconds())
}
