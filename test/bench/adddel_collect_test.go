package bench

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// collector gathers the samples of one benchmark by case, variant and metric,
// in the order they first appear, and writes them out at the end.
type collector struct {
	bench   string
	order   [][4]string
	samples map[[4]string][]float64
}

func newCollector(bench string) *collector {
	return &collector{bench: bench, samples: map[[4]string][]float64{}}
}

// add records one sample.
func (c *collector) add(cse, variant, metric, unit string, v float64) {
	k := [4]string{cse, variant, metric, unit}
	if _, ok := c.samples[k]; !ok {
		c.order = append(c.order, k)
	}
	c.samples[k] = append(c.samples[k], v)
}

// get returns the samples of one series.
func (c *collector) get(cse, variant, metric, unit string) []float64 {
	return c.samples[[4]string{cse, variant, metric, unit}]
}

// write appends every series to the results file.
func (c *collector) write(tb testing.TB) {
	tb.Helper()
	for _, k := range c.order {
		writeResult(tb, Result{Bench: c.bench, Case: k[0], Variant: k[1], Metric: k[2], Unit: k[3], Samples: c.samples[k]})
	}
}

// envCount reads a positive count from the environment, or gives def.
func envCount(tb testing.TB, env string, def int) int {
	tb.Helper()
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive number", env, s)
	}
	return n
}

// millis is d in milliseconds.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
