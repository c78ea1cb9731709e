// Package results is the schema of the benchmarks' results file: test/bench
// appends to it, tools/benchreport reads it. One JSON object a line:
//
//	{"bench":"adddel","case":"3 networks","variant":"thin","metric":"wall_ms","unit":"ms","samples":[...]}
//
// A metric may name a process kind after a colon ("rss_mib:bridge"). A series
// sampled at a fixed interval (a timeline) gives that interval in IntervalMS.
package results

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// Result is one line of the results file.
type Result struct {
	Bench      string    `json:"bench"`
	Case       string    `json:"case"`
	Variant    string    `json:"variant"`
	Metric     string    `json:"metric"`
	Unit       string    `json:"unit"`
	Samples    []float64 `json:"samples"`
	IntervalMS float64   `json:"interval_ms,omitempty"`
}

// Append adds one result to the file at path, creating it.
func Append(path string, r Result) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(f).Encode(r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Read reads a results file; blank lines are skipped.
func Read(r io.Reader) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var res Result
		if err := json.Unmarshal([]byte(text), &res); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, res)
	}
	return out, sc.Err()
}
