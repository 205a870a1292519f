package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/usage"
)

const dashboardFile = "../../charts/nfs-subdir-provisioner/dashboards/nfs-subdir-provisioner.json"

// metricName finds the metric names in a PromQL expression: identifiers of
// the families the binary serves.
var metricName = regexp.MustCompile(`\b(?:nfs_subdir_provisioner|controller|process|go)_[a-z0-9_]+\b`)

// Every metric the chart's Grafana dashboard queries is one the binary
// serves (a histogram's _bucket, _count and _sum included).
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dashboard); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	served := servedMetrics(t)
	queried := 0
	check := func(where, expr string) {
		for _, name := range metricName.FindAllString(expr, -1) {
			queried++
			if !served[name] {
				t.Errorf("%s queries %s, which the binary does not serve", where, name)
			}
		}
	}
	for _, p := range dashboard.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			check("panel "+p.Title, target.Expr)
		}
	}
	for _, v := range dashboard.Templating.List {
		if q, ok := v.Query.(string); ok {
			check("variable query", q)
		}
	}
	if queried < 10 {
		t.Fatalf("found only %d metric names in the dashboard: the scan is broken", queried)
	}
}

// servedMetrics is every sample name /metrics can show: the registry of
// main, with one observation in each metric so every family appears.
func servedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	registry, nfs, lib := newRegistry()
	nfs.Observe("s", "MKDIR", time.Millisecond, "ok")
	nfs.RemovedEntries("s", 1, 1)
	nfs.ExportCapacity("s", "/x", export.Capacity{SizeBytes: 1})
	nfs.VolumeUsage([]usage.VolumeUsage{{Namespace: "n", Claim: "c", PV: "p"}}, time.Second, 0)
	nfs.ArchivesSwept(map[string]int{"c": 1}, map[string]int{"c": 1})
	nfs.ClonesRunning(1)
	nfs.CloneCopied("s", 1)
	nfs.CloneEnded(time.Second, nil)
	lib.PersistentVolumeClaimProvisionTotal.WithLabelValues("c", "").Inc()
	lib.PersistentVolumeClaimProvisionFailedTotal.WithLabelValues("c", "").Inc()
	lib.PersistentVolumeClaimProvisionDurationSeconds.WithLabelValues("c", "").Observe(1)
	lib.PersistentVolumeDeleteTotal.WithLabelValues("c").Inc()
	lib.PersistentVolumeDeleteFailedTotal.WithLabelValues("c").Inc()
	lib.PersistentVolumeDeleteDurationSeconds.WithLabelValues("c").Observe(1)
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		served[name] = true
		if strings.HasSuffix(f.GetType().String(), "HISTOGRAM") {
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				served[name+suffix] = true
			}
		}
	}
	return served
}
