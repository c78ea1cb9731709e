package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/polynet-cni/polynet/tools/benchreport/results"
)

// Result is one line of the results file; tools/benchreport/results has the
// schema.
type Result = results.Result

// outEnv names the results file; without it, the results go to a file in a
// temporary folder, whose path is printed once.
const outEnv = "BENCH_OUT"

var (
	outMu   sync.Mutex
	outPath string
)

// writeResult appends one result to the results file, a JSON object a line.
func writeResult(tb testing.TB, r Result) {
	tb.Helper()
	outMu.Lock()
	defer outMu.Unlock()
	if outPath == "" {
		outPath = os.Getenv(outEnv)
		if outPath == "" {
			dir, err := os.MkdirTemp("", "polynet-bench-")
			if err != nil {
				tb.Fatal(err)
			}
			outPath = filepath.Join(dir, "bench.jsonl")
			fmt.Fprintf(os.Stderr, "bench: %s is not set; writing the results to %s\n", outEnv, outPath)
		}
	}
	if err := results.Append(outPath, r); err != nil {
		tb.Fatal(err)
	}
}
