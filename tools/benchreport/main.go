// Command benchreport reads the results file the benchmarks of test/bench write
// (one JSON object a line: bench, case, variant, metric, unit, samples) and
// prints a table per bench: for each case and metric, per variant, the sample
// count, median, 99th percentile, minimum and maximum, and the ratio of the
// median to the direct variant's (the delegates called without us) when the
// case has one. With -svg it also draws the plots BENCHMARKS.md links:
// adddel.svg (ADD+DEL wall time per variant and network count) and
// daemon-memory.svg (the daemon's RSS over a burst, when the results hold a
// timeline).
//
//	go run ./tools/benchreport -in bench.jsonl -svg docs/bench
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
)

func main() {
	in := flag.String("in", "", "the results file (JSON lines)")
	svgDir := flag.String("svg", "", "the folder to write the plots into; none when empty")
	flag.Parse()
	if err := run(*in, *svgDir, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(in, svgDir string, out io.Writer) error {
	if in == "" {
		return fmt.Errorf("-in is required")
	}
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	results, err := readResults(f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", in, err)
	}
	ts := tables(results)
	for _, t := range ts {
		if err := printTable(out, t); err != nil {
			return err
		}
	}
	if svgDir == "" {
		return nil
	}
	return writePlots(out, ts, svgDir)
}

// printTable writes one bench's table.
func printTable(w io.Writer, t *benchTable) error {
	fmt.Fprintf(w, "\n== %s ==\n", t.Name)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "case\tmetric\tunit\tvariant\tn\tmedian\tp99\tmin\tmax\t×direct\t")
	for _, s := range t.rows() {
		ratio := "-"
		if s.HasBaseline {
			ratio = fmt.Sprintf("%.2f", s.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", s.Case, s.Metric, s.Unit, s.Variant, s.N,
			num(s.Median), num(s.P99), num(s.Min), num(s.Max), ratio)
	}
	for _, tl := range t.Timelines {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t(a timeline every %g ms: plotted)\t\t\t\t\t\n", tl.Case, tl.Metric, tl.Unit, tl.Variant, len(tl.Samples), tl.IntervalMS)
	}
	return tw.Flush()
}

// num prints a figure with three significant digits or more.
func num(x float64) string {
	switch {
	case x >= 100 || x <= -100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10 || x <= -10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

// writePlots writes the plots whose data the results hold, and says which.
func writePlots(out io.Writer, ts []*benchTable, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	plots := map[string]string{}
	for _, t := range ts {
		switch t.Name {
		case "adddel":
			if svg := addDelSVG(t); svg != "" {
				plots["adddel.svg"] = svg
			}
		case "daemon":
			if svg := timelineSVG(t.Timelines); svg != "" {
				plots["daemon-memory.svg"] = svg
			}
		}
	}
	fmt.Fprintln(out)
	for _, name := range []string{"adddel.svg", "daemon-memory.svg"} {
		svg, ok := plots[name]
		if !ok {
			fmt.Fprintf(out, "no data for %s: not drawn\n", name)
			continue
		}
		path := filepath.Join(dir, name)
		if err := writeFileAtomic(path, []byte(svg)); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s\n", path)
	}
	return nil
}

// writeFileAtomic writes through a temporary file in the same folder and a
// rename, so a reader never sees half a plot.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
