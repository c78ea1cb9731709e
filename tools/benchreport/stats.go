package main

import (
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/polynet-cni/polynet/tools/benchreport/results"
)

// Result is one line of the results file.
type Result = results.Result

// baseline is the variant every other is compared with: the delegates called
// directly, without the meta-plugin.
const baseline = "direct"

// readResults reads a results file.
func readResults(r io.Reader) ([]Result, error) { return results.Read(r) }

// summary is the distribution of one series.
type summary struct {
	N                     int
	Median, P99, Min, Max float64
	// HasBaseline says whether Ratio, the median over the baseline's, is set.
	HasBaseline         bool
	Ratio               float64
	Bench, Case, Metric string
	Variant, Unit       string
}

// summarize computes the median (the mean of the middle two of an even count),
// the 99th percentile (nearest rank), the minimum and the maximum.
func summarize(xs []float64) summary {
	if len(xs) == 0 {
		return summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	rank := int(math.Ceil(0.99*float64(n))) - 1
	return summary{N: n, Median: med, P99: s[max(rank, 0)], Min: s[0], Max: s[n-1]}
}

// key names one series of a bench.
type key struct{ Case, Metric, Variant string }

// benchTable is one bench's series, merged across lines (a series written in
// several lines, by several rounds or runs, is one distribution), in order.
type benchTable struct {
	Name      string
	Cases     []string
	Metrics   map[string][]string // case -> metrics, in first-seen order
	Variants  map[key][]string    // (case, metric) -> variants, baseline first
	Units     map[key]string
	Samples   map[key][]float64
	Timelines []Result
}

// tables groups results by bench, in the order benches first appear. Timelines
// (series with an interval) are kept whole for plotting, out of the tables.
func tables(results []Result) []*benchTable {
	var out []*benchTable
	byName := map[string]*benchTable{}
	for _, r := range results {
		t := byName[r.Bench]
		if t == nil {
			t = &benchTable{Name: r.Bench, Metrics: map[string][]string{}, Variants: map[key][]string{},
				Units: map[key]string{}, Samples: map[key][]float64{}}
			byName[r.Bench] = t
			out = append(out, t)
		}
		if r.IntervalMS > 0 {
			t.Timelines = append(t.Timelines, r)
			continue
		}
		if !slices.Contains(t.Cases, r.Case) {
			t.Cases = append(t.Cases, r.Case)
		}
		if !slices.Contains(t.Metrics[r.Case], r.Metric) {
			t.Metrics[r.Case] = append(t.Metrics[r.Case], r.Metric)
		}
		cm := key{Case: r.Case, Metric: r.Metric}
		if !slices.Contains(t.Variants[cm], r.Variant) {
			t.Variants[cm] = append(t.Variants[cm], r.Variant)
		}
		k := key{r.Case, r.Metric, r.Variant}
		t.Units[k] = r.Unit
		t.Samples[k] = append(t.Samples[k], r.Samples...)
	}
	for _, t := range out {
		slices.SortStableFunc(t.Cases, compareCases)
		for _, ms := range t.Metrics {
			slices.SortStableFunc(ms, compareMetrics)
		}
		for cm, vs := range t.Variants {
			slices.SortStableFunc(vs, compareVariants)
			t.Variants[cm] = vs
		}
	}
	return out
}

// rows returns the summaries of a bench's series in table order: by case, by
// metric, by variant; each with its ratio to the baseline's median when the
// case has a baseline for that metric.
func (t *benchTable) rows() []summary {
	var out []summary
	for _, c := range t.Cases {
		for _, m := range t.Metrics[c] {
			base, hasBase := t.Samples[key{c, m, baseline}]
			baseMed := summarize(base).Median
			for _, v := range t.Variants[key{Case: c, Metric: m}] {
				k := key{c, m, v}
				s := summarize(t.Samples[k])
				s.Bench, s.Case, s.Metric, s.Variant, s.Unit = t.Name, c, m, v, t.Units[k]
				if hasBase && len(base) > 0 && baseMed != 0 {
					s.HasBaseline, s.Ratio = true, s.Median/baseMed
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// compareCases orders cases by their leading number ("3 networks" before
// "10 networks"), then by name.
func compareCases(a, b string) int {
	na, okA := leadingNumber(a)
	nb, okB := leadingNumber(b)
	switch {
	case okA && okB && na != nb:
		if na < nb {
			return -1
		}
		return 1
	case okA != okB:
		if okA {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

func leadingNumber(s string) (float64, bool) {
	f, _, _ := strings.Cut(s, " ")
	n, err := strconv.ParseFloat(f, 64)
	return n, err == nil
}

// variantOrder is the order of the known variants: the floor first.
var variantOrder = []string{baseline, "thin", "thick"}

// compareVariants puts the known variants first, in variantOrder, and the rest
// after them in name order.
func compareVariants(a, b string) int {
	ia, ib := slices.Index(variantOrder, a), slices.Index(variantOrder, b)
	if ia < 0 {
		ia = len(variantOrder)
	}
	if ib < 0 {
		ib = len(variantOrder)
	}
	if ia != ib {
		return ia - ib
	}
	return strings.Compare(a, b)
}

// metricOrder is the order of the known metrics (the part before a colon);
// others follow, and within one kind the names are sorted.
var metricOrder = []string{"wall_ms", "makespan_ms", "latency_ms", "cpu_ms", "rss_mib"}

func compareMetrics(a, b string) int {
	rank := func(m string) int {
		base, _, _ := strings.Cut(m, ":")
		if i := slices.Index(metricOrder, base); i >= 0 {
			return i
		}
		return len(metricOrder)
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra - rb
	}
	return strings.Compare(a, b)
}
