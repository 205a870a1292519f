//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Measurements of the provisioner process from outside: its /metrics (Prometheus text format,
// parsed here for the few series the benchmark needs) and /proc/<pid>.

// sample is one series of a scrape: metric name, labels, value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape is everything /metrics returned at one moment.
type scrape []sample

func (p *provisionerProcess) scrapeMetrics(ctx context.Context) (scrape, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	request, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metricsURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		return nil, fmt.Errorf("scraping %s/metrics: %w", p.metricsURL, err)
	}
	defer response.Body.Close()
	if response.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s/metrics: HTTP %d", p.metricsURL, response.StatusCode)
	}
	return parseMetrics(response.Body)
}

// parseMetrics reads the Prometheus text exposition format: `name{k="v",...} value [timestamp]`.
func parseMetrics(r io.Reader) (scrape, error) {
	var out scrape
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexByte(line, '{'); i >= 0 {
			s.name = line[:i]
			end := strings.LastIndexByte(line, '}')
			if end < i {
				return nil, fmt.Errorf("malformed metrics line %q", line)
			}
			if err := parseLabels(line[i+1:end], s.labels); err != nil {
				return nil, fmt.Errorf("metrics line %q: %w", line, err)
			}
			rest = strings.TrimSpace(line[end+1:])
		} else {
			fields := strings.Fields(line)
			if len(fields) < 2 {
				return nil, fmt.Errorf("malformed metrics line %q", line)
			}
			s.name, rest = fields[0], fields[1]
		}
		value, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		s.value = value
		out = append(out, s)
	}
	return out, scanner.Err()
}

func parseLabels(text string, into map[string]string) error {
	for len(text) > 0 {
		eq := strings.IndexByte(text, '=')
		if eq < 0 || eq+1 >= len(text) || text[eq+1] != '"' {
			return fmt.Errorf("bad labels %q", text)
		}
		key := strings.TrimSpace(strings.TrimPrefix(text[:eq], ","))
		var value strings.Builder
		i := eq + 2
		for ; i < len(text) && text[i] != '"'; i++ {
			if text[i] == '\\' && i+1 < len(text) {
				i++
				switch text[i] {
				case 'n':
					value.WriteByte('\n')
				default:
					value.WriteByte(text[i])
				}
				continue
			}
			value.WriteByte(text[i])
		}
		if i >= len(text) {
			return fmt.Errorf("unterminated label value in %q", text)
		}
		into[key] = value.String()
		text = strings.TrimPrefix(text[i+1:], ",")
	}
	return nil
}

// sum adds the values of every series called name whose labels include match.
func (s scrape) sum(name string, match map[string]string) float64 {
	total := 0.0
	for _, x := range s {
		if x.name == name && labelsMatch(x.labels, match) {
			total += x.value
		}
	}
	return total
}

func labelsMatch(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// countsBy sums a counter-like series by one label (e.g. NFS round trips by operation).
func (s scrape) countsBy(name, label string, match map[string]string) map[string]float64 {
	out := map[string]float64{}
	for _, x := range s {
		if x.name == name && labelsMatch(x.labels, match) {
			out[x.labels[label]] += x.value
		}
	}
	return out
}

// histogram is the cumulative buckets of one histogram (summed over the matching series).
type histogram struct {
	bounds []float64 // upper bounds, ascending, +Inf last
	counts []float64 // cumulative counts
}

func (s scrape) histogram(name string, match map[string]string) histogram {
	byBound := map[float64]float64{}
	for _, x := range s {
		if x.name != name+"_bucket" || !labelsMatch(x.labels, match) {
			continue
		}
		bound, err := strconv.ParseFloat(x.labels["le"], 64)
		if err != nil {
			continue
		}
		byBound[bound] += x.value
	}
	var h histogram
	for bound := range byBound {
		h.bounds = append(h.bounds, bound)
	}
	sort.Float64s(h.bounds)
	for _, bound := range h.bounds {
		h.counts = append(h.counts, byBound[bound])
	}
	return h
}

// minus is the histogram of the observations made between two scrapes.
func (h histogram) minus(before histogram) histogram {
	out := histogram{bounds: h.bounds, counts: make([]float64, len(h.counts))}
	prior := map[float64]float64{}
	for i, bound := range before.bounds {
		prior[bound] = before.counts[i]
	}
	for i, bound := range h.bounds {
		out.counts[i] = h.counts[i] - prior[bound]
	}
	return out
}

func (h histogram) total() float64 {
	if len(h.counts) == 0 {
		return 0
	}
	return h.counts[len(h.counts)-1]
}

// quantile estimates the q-quantile like PromQL's histogram_quantile: linear interpolation inside
// the bucket that holds it. NaN without observations.
func (h histogram) quantile(q float64) float64 {
	total := h.total()
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, bound := range h.bounds {
		if h.counts[i] >= rank {
			if math.IsInf(bound, 1) {
				return lower // beyond the last finite bucket: its bound is all we know
			}
			inBucket := h.counts[i] - below
			if inBucket == 0 {
				return bound
			}
			return lower + (bound-lower)*(rank-below)/inBucket
		}
		lower, below = bound, h.counts[i]
	}
	return lower
}

// fractionWithin is the exact share of observations ≤ bound, when bound is a bucket boundary.
func (h histogram) fractionWithin(bound float64) float64 {
	total := h.total()
	if total == 0 {
		return math.NaN()
	}
	for i, b := range h.bounds {
		if b == bound {
			return h.counts[i] / total
		}
	}
	return math.NaN()
}

// procStats are the process's CPU time and memory from /proc.
type procStats struct {
	cpuSeconds float64 // user + system
	rssBytes   int64   // VmRSS
	hwmBytes   int64   // VmHWM: peak RSS since start or the last resetPeakRSS
}

// clockTicks is USER_HZ; 100 on every Linux architecture Go supports.
const clockTicks = 100

func readProcStats(pid int) (procStats, error) {
	var st procStats
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
	text := string(stat)
	fields := strings.Fields(text[strings.LastIndexByte(text, ')')+1:])
	if len(fields) < 13 {
		return st, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64) // field 14
	stime, err2 := strconv.ParseFloat(fields[12], 64) // field 15
	if err1 != nil || err2 != nil {
		return st, fmt.Errorf("/proc/%d/stat: utime/stime: %v %v", pid, err1, err2)
	}
	st.cpuSeconds = (utime + stime) / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			st.rssBytes = kb * 1024
		case "VmHWM":
			st.hwmBytes = kb * 1024
		}
	}
	return st, nil
}

// resetPeakRSS sets VmHWM back to the current RSS (Linux ≥ 4.0, writing 5 to clear_refs), so each
// run reports its own peak.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// durationQuantile is the q-quantile of exact durations (nearest rank).
func durationQuantile(values []time.Duration, q float64) time.Duration {
	if len(values) == 0 {
		return 0
	}
	sorted := append([]time.Duration(nil), values...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	index := int(math.Ceil(q*float64(len(sorted)))) - 1
	if index < 0 {
		index = 0
	}
	return sorted[index]
}

const mib = 1024 * 1024

// bedCPU is the CPU time of the test bed's components (their PIDs from $E2E_TESTBED_DIR/pids) and
// of the whole machine, to show what a run's time was spent on.
type bedCPU struct {
	components map[string]float64 // CPU seconds by component
	busy, all  float64            // machine: non-idle and total CPU seconds (all cores)
}

var bedComponents = []string{"kube-apiserver", "etcd", "kube-controller-manager", "ganesha"}

func readBedCPU(provisionerPID int) bedCPU {
	out := bedCPU{components: map[string]float64{}}
	if st, err := readProcStats(provisionerPID); err == nil {
		out.components["provisioner"] = st.cpuSeconds
	}
	if st, err := readProcStats(os.Getpid()); err == nil {
		out.components["harness"] = st.cpuSeconds
	}
	if dir := os.Getenv("E2E_TESTBED_DIR"); dir != "" {
		for _, name := range bedComponents {
			raw, err := os.ReadFile(dir + "/pids/" + name + ".pid")
			if err != nil {
				continue
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
			if err != nil {
				continue
			}
			if st, err := readProcStats(pid); err == nil {
				out.components[name] = st.cpuSeconds
			}
		}
	}
	if raw, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(raw), "\n")
		fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
		for i, field := range fields[1:] {
			v, err := strconv.ParseFloat(field, 64)
			if err != nil || i >= 8 {
				continue
			}
			out.all += v / clockTicks
			if i != 3 && i != 4 { // idle, iowait
				out.busy += v / clockTicks
			}
		}
	}
	return out
}

// minus is the CPU used between two readings.
func (c bedCPU) minus(before bedCPU) bedCPU {
	out := bedCPU{components: map[string]float64{}, busy: c.busy - before.busy, all: c.all - before.all}
	for name, v := range c.components {
		if prior, ok := before.components[name]; ok {
			out.components[name] = v - prior
		}
	}
	return out
}

func (c bedCPU) String() string {
	parts := []string{}
	accounted := 0.0
	for _, name := range append([]string{"provisioner"}, append(bedComponents, "harness")...) {
		if v, ok := c.components[name]; ok {
			parts = append(parts, fmt.Sprintf("%s %.1fs", name, v))
			accounted += v
		}
	}
	// Whatever else ran: other processes on the machine (other tests, builds), the kernel.
	parts = append(parts, fmt.Sprintf("everything else %.1fs", c.busy-accounted))
	utilisation := 0.0
	if c.all > 0 {
		utilisation = 100 * c.busy / c.all
	}
	return fmt.Sprintf("%s; machine %.0f%% busy (%.1f of %.1f CPU s)", strings.Join(parts, ", "), utilisation, c.busy, c.all)
}
