//go:build e2e

package bench

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Measurements of the provisioner process from outside /metrics (framework.Metrics): /proc/<pid>.

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
	if dir := fw.Env.TestbedDir; dir != "" {
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
