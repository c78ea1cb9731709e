package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSummarize(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100..1, unsorted
	}
	tests := []struct {
		name string
		in   []float64
		want summary
	}{
		{"empty", nil, summary{}},
		{"one", []float64{7}, summary{N: 1, Median: 7, P99: 7, Min: 7, Max: 7}},
		{"odd count, unsorted", []float64{5, 1, 3}, summary{N: 3, Median: 3, P99: 5, Min: 1, Max: 5}},
		{"even count: mean of the middle two", []float64{4, 1, 3, 2}, summary{N: 4, Median: 2.5, P99: 4, Min: 1, Max: 4}},
		{"p99 by nearest rank", hundred, summary{N: 100, Median: 50.5, P99: 99, Min: 1, Max: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, summarize(tt.in)); diff != "" {
				t.Errorf("summarize(%v) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestSummarizeKeepsInput(t *testing.T) {
	in := []float64{3, 1, 2}
	summarize(in)
	if diff := cmp.Diff([]float64{3, 1, 2}, in); diff != "" {
		t.Errorf("summarize sorted its input (-want +got):\n%s", diff)
	}
}

// row is what the tests compare of a table row.
type row struct {
	Case, Metric, Variant string
	N                     int
	Median                float64
	HasBaseline           bool
	Ratio                 float64
}

func TestRows(t *testing.T) {
	line := func(cse, variant, metric string, samples ...float64) Result {
		return Result{Bench: "adddel", Case: cse, Variant: variant, Metric: metric, Unit: "ms", Samples: samples}
	}
	tests := []struct {
		name string
		in   []Result
		want []row
	}{{
		name: "ratio to direct, variants in order, cases by number",
		in: []Result{
			line("3 networks", "thick", "wall_ms", 30),
			line("1 network", "thin", "wall_ms", 20, 40, 30),
			line("3 networks", "direct", "wall_ms", 20),
			line("1 network", "direct", "wall_ms", 10),
		},
		want: []row{
			{"1 network", "wall_ms", "direct", 1, 10, true, 1},
			{"1 network", "wall_ms", "thin", 3, 30, true, 3},
			{"3 networks", "wall_ms", "direct", 1, 20, true, 1},
			{"3 networks", "wall_ms", "thick", 1, 30, true, 1.5},
		},
	}, {
		name: "no direct variant in a case: no ratio",
		in: []Result{
			line("1 network", "thin", "wall_ms", 20),
			line("1 network", "thick", "wall_ms", 10),
		},
		want: []row{
			{"1 network", "wall_ms", "thin", 1, 20, false, 0},
			{"1 network", "wall_ms", "thick", 1, 10, false, 0},
		},
	}, {
		name: "direct missing for one metric only, and a metric only one variant has",
		in: []Result{
			line("1 network", "direct", "wall_ms", 10),
			line("1 network", "thick", "wall_ms", 12),
			line("1 network", "thick", "rss_mib:daemon", 30),
			line("1 network", "thin", "cpu_ms", 5),
		},
		want: []row{
			{"1 network", "wall_ms", "direct", 1, 10, true, 1},
			{"1 network", "wall_ms", "thick", 1, 12, true, 1.2},
			{"1 network", "cpu_ms", "thin", 1, 5, false, 0},
			{"1 network", "rss_mib:daemon", "thick", 1, 30, false, 0},
		},
	}, {
		name: "a direct median of zero gives no ratio",
		in:   []Result{line("c", "direct", "retries", 0), line("c", "thick", "retries", 4)},
		want: []row{{"c", "retries", "direct", 1, 0, false, 0}, {"c", "retries", "thick", 1, 4, false, 0}},
	}, {
		name: "a series in several lines is one distribution",
		in:   []Result{line("c", "thin", "wall_ms", 1, 2), line("c", "thin", "wall_ms", 3)},
		want: []row{{"c", "wall_ms", "thin", 3, 2, false, 0}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := tables(tt.in)
			if len(ts) != 1 {
				t.Fatalf("got %d benches, want 1", len(ts))
			}
			var got []row
			for _, s := range ts[0].rows() {
				got = append(got, row{s.Case, s.Metric, s.Variant, s.N, s.Median, s.HasBaseline, s.Ratio})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadResults(t *testing.T) {
	in := `{"bench":"adddel","case":"1 network","variant":"thin","metric":"wall_ms","unit":"ms","samples":[1,2]}

{"bench":"daemon","case":"burst 100","variant":"thick","metric":"rss_mib_timeline","unit":"MiB","samples":[30,31],"interval_ms":100}
`
	got, err := readResults(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Result{
		{Bench: "adddel", Case: "1 network", Variant: "thin", Metric: "wall_ms", Unit: "ms", Samples: []float64{1, 2}},
		{Bench: "daemon", Case: "burst 100", Variant: "thick", Metric: "rss_mib_timeline", Unit: "MiB", Samples: []float64{30, 31}, IntervalMS: 100},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("readResults (-want +got):\n%s", diff)
	}
	if _, err := readResults(strings.NewReader("{not json\n")); err == nil {
		t.Error("readResults accepted a broken line")
	}
}

// TestRun reads a results file without a timeline and with a variant missing
// from one case, prints the tables and draws only the plot it has data for.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "bench.jsonl")
	data := `{"bench":"adddel","case":"1 network","variant":"direct","metric":"wall_ms","unit":"ms","samples":[10,12,11]}
{"bench":"adddel","case":"1 network","variant":"thin","metric":"wall_ms","unit":"ms","samples":[20,22,21]}
{"bench":"adddel","case":"3 networks","variant":"thick","metric":"wall_ms","unit":"ms","samples":[30]}
{"bench":"api","case":"1 NAD","variant":"thin","metric":"requests:get pods","unit":"req/pod","samples":[1,1]}
`
	if err := os.WriteFile(in, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	svgDir := filepath.Join(dir, "svg")
	if err := run(in, svgDir, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"== adddel ==", "== api ==", "1.91", "requests:get pods", "no data for daemon-memory.svg"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	svg, err := os.ReadFile(filepath.Join(svgDir, "adddel.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(svg), "<svg") || !strings.Contains(string(svg), "3 networks") {
		t.Errorf("adddel.svg:\n%s", svg)
	}
	if _, err := os.Stat(filepath.Join(svgDir, "daemon-memory.svg")); !os.IsNotExist(err) {
		t.Errorf("daemon-memory.svg drawn without a timeline (stat: %v)", err)
	}
}

func TestTimelineSVG(t *testing.T) {
	if svg := timelineSVG(nil); svg != "" {
		t.Errorf("a plot of no timeline: %q", svg)
	}
	svg := timelineSVG([]Result{{Case: "burst 100", Unit: "MiB", Samples: []float64{30, 45, 31}, IntervalMS: 100}})
	if !strings.Contains(svg, "<polyline") || !strings.Contains(svg, "burst 100") {
		t.Errorf("timeline plot:\n%s", svg)
	}
}

func TestAxis(t *testing.T) {
	tests := []struct{ top, step, end float64 }{
		{0, 1, 1}, {9, 2, 10}, {143, 50, 150}, {1006, 500, 1500}, {0.7, 0.2, 0.8},
	}
	for _, tt := range tests {
		step, end := axis(tt.top)
		if !near(step, tt.step) || !near(end, tt.end) {
			t.Errorf("axis(%v) = %v, %v; want %v, %v", tt.top, step, end, tt.step, tt.end)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
