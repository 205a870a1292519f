//go:build e2e

package framework

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a /metrics endpoint, by family name.
type Metrics map[string]*dto.MetricFamily

// Scrape reads url (Prometheus text format) with expfmt.
func Scrape(ctx context.Context, url string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	request, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer response.Body.Close()
	if response.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: HTTP %d", url, response.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(response.Body)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", url, err)
	}
	return families, nil
}

// matching calls fn for every sample of the family whose labels include match.
func (m Metrics) matching(name string, match map[string]string, fn func(labels map[string]string, metric *dto.Metric)) {
	family := m[name]
	if family == nil {
		return
	}
samples:
	for _, metric := range family.GetMetric() {
		labels := make(map[string]string, len(metric.GetLabel()))
		for _, pair := range metric.GetLabel() {
			labels[pair.GetName()] = pair.GetValue()
		}
		for k, v := range match {
			if labels[k] != v {
				continue samples
			}
		}
		fn(labels, metric)
	}
}

func value(metric *dto.Metric) float64 {
	switch {
	case metric.GetCounter() != nil:
		return metric.GetCounter().GetValue()
	case metric.GetGauge() != nil:
		return metric.GetGauge().GetValue()
	case metric.GetUntyped() != nil:
		return metric.GetUntyped().GetValue()
	case metric.GetHistogram() != nil:
		return float64(metric.GetHistogram().GetSampleCount())
	case metric.GetSummary() != nil:
		return float64(metric.GetSummary().GetSampleCount())
	}
	return 0
}

// Sum adds the values of the samples of family name whose labels include match (for a histogram
// or summary, its count of observations).
func (m Metrics) Sum(name string, match map[string]string) float64 {
	total := 0.0
	m.matching(name, match, func(_ map[string]string, metric *dto.Metric) { total += value(metric) })
	return total
}

// SumBy is Sum split by the value of one label (NFS round trips by operation, say).
func (m Metrics) SumBy(name, label string, match map[string]string) map[string]float64 {
	out := map[string]float64{}
	m.matching(name, match, func(labels map[string]string, metric *dto.Metric) { out[labels[label]] += value(metric) })
	return out
}

// Histogram is the cumulative buckets of one histogram family, summed over the matching samples.
func (m Metrics) Histogram(name string, match map[string]string) Histogram {
	byBound := map[float64]float64{}
	m.matching(name, match, func(_ map[string]string, metric *dto.Metric) {
		h := metric.GetHistogram()
		if h == nil {
			return
		}
		for _, bucket := range h.GetBucket() {
			if !math.IsInf(bucket.GetUpperBound(), 1) {
				byBound[bucket.GetUpperBound()] += float64(bucket.GetCumulativeCount())
			}
		}
		// The +Inf bucket is the count, whether the exposition listed it as a bucket or not.
		byBound[math.Inf(1)] += float64(h.GetSampleCount())
	})
	var h Histogram
	for bound := range byBound {
		h.Bounds = append(h.Bounds, bound)
	}
	sort.Float64s(h.Bounds)
	for _, bound := range h.Bounds {
		h.Counts = append(h.Counts, byBound[bound])
	}
	return h
}

// Histogram is cumulative bucket counts by ascending upper bound, +Inf last.
type Histogram struct {
	Bounds []float64
	Counts []float64
}

// Minus is the histogram of the observations made between two scrapes.
func (h Histogram) Minus(before Histogram) Histogram {
	out := Histogram{Bounds: h.Bounds, Counts: make([]float64, len(h.Counts))}
	prior := map[float64]float64{}
	for i, bound := range before.Bounds {
		prior[bound] = before.Counts[i]
	}
	for i, bound := range h.Bounds {
		out.Counts[i] = h.Counts[i] - prior[bound]
	}
	return out
}

// Total is the number of observations.
func (h Histogram) Total() float64 {
	if len(h.Counts) == 0 {
		return 0
	}
	return h.Counts[len(h.Counts)-1]
}

// Quantile estimates the q-quantile like PromQL's histogram_quantile: linear interpolation inside
// the bucket that holds it. NaN without observations.
func (h Histogram) Quantile(q float64) float64 {
	total := h.Total()
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, bound := range h.Bounds {
		if h.Counts[i] >= rank {
			if math.IsInf(bound, 1) {
				return lower // beyond the last finite bucket: its bound is all we know
			}
			inBucket := h.Counts[i] - below
			if inBucket == 0 {
				return bound
			}
			return lower + (bound-lower)*(rank-below)/inBucket
		}
		lower, below = bound, h.Counts[i]
	}
	return lower
}

// FractionWithin is the exact share of observations ≤ bound, when bound is a bucket boundary.
func (h Histogram) FractionWithin(bound float64) float64 {
	total := h.Total()
	if total == 0 {
		return math.NaN()
	}
	for i, b := range h.Bounds {
		if b == bound {
			return h.Counts[i] / total
		}
	}
	return math.NaN()
}
