// Package bench measures what the runtime pays per pod for our binaries, side by
// side with a reference plugin in one run, because this machine is shared and
// noisy: compare the ratios and medians it reports, not absolute times.
//
//	go test -run XXX -bench Startup -benchtime 200x ./test/bench/
package bench

import (
	"bytes"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/polynet-cni/polynet/test/testbed"
)

type sample struct {
	wall time.Duration
	rss  int64 // KiB
}

// run executes bin once as a runtime asks for VERSION, the cheapest command: what it
// costs is the process start and the initialisation of every package it links. The
// peak RSS comes from a second run under /usr/bin/time, which forks a small process
// of its own: a child that Go starts shares the test binary's memory until exec,
// and the kernel would report that as the child's peak.
func run(b *testing.B, bin string) sample {
	cmd := versionCmd(bin)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v", bin, err)
	}
	wall := time.Since(start)
	var out bytes.Buffer
	timed := versionCmd("/usr/bin/time", "-f", "%M", bin)
	timed.Stderr = &out
	if err := timed.Run(); err != nil {
		b.Fatalf("/usr/bin/time %s: %v", bin, err)
	}
	rss, err := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
	if err != nil {
		b.Fatalf("/usr/bin/time printed %q", out.String())
	}
	return sample{wall: wall, rss: rss}
}

func versionCmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"CNI_COMMAND=VERSION"}
	cmd.Stdin = bytes.NewReader([]byte(`{"cniVersion":"1.0.0"}`))
	return cmd
}

// BenchmarkStartup runs the per-pod binaries and the reference bridge plugin in
// random order each round and reports, per binary, the median wall time (ms), the
// median peak RSS (MiB) and the ratio of its median time to bridge's, and writes
// every sample to the results file (bench "startup").
func BenchmarkStartup(b *testing.B) {
	bed, err := testbed.Load()
	if err != nil {
		b.Fatal(err)
	}
	bins := map[string]string{
		"multus":      testbed.Binary(b, "multus"),
		"multus-shim": testbed.Binary(b, "multus-shim"),
		"bridge":      filepath.Join(bed.CNIPluginDir(), "bridge"),
	}
	names := []string{"multus", "multus-shim", "bridge"}
	samples := map[string][]sample{}
	for _, n := range names { // warm the page cache
		run(b, bins[n])
	}
	b.ResetTimer()
	// Each b.N runs BENCH_STARTUP_ROUNDS rounds (1 unless set), so that the
	// driver's -benchtime 1x, which the other benchmarks want, still gives
	// this one its hundreds of samples.
	rounds := envCount(b, "BENCH_STARTUP_ROUNDS", 1)
	for b.Loop() {
		for range rounds {
			rand.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
			for _, n := range names {
				samples[n] = append(samples[n], run(b, bins[n]))
			}
		}
	}
	b.StopTimer()
	col := newCollector("startup")
	for _, n := range []string{"multus", "multus-shim", "bridge"} {
		for _, x := range samples[n] {
			col.add("VERSION", n, "wall_ms", "ms", millis(x.wall))
			col.add("VERSION", n, "rss_mib", "MiB", float64(x.rss)/1024)
		}
	}
	col.write(b)
	ref := median(samples["bridge"])
	for n, s := range samples {
		m := median(s)
		b.ReportMetric(float64(m.wall.Microseconds())/1000, n+"-ms")
		b.ReportMetric(float64(m.rss)/1024, n+"-MiB")
		b.ReportMetric(float64(m.wall)/float64(ref.wall), n+"/bridge")
	}
}

func median(s []sample) sample {
	walls := make([]time.Duration, len(s))
	rss := make([]int64, len(s))
	for i, x := range s {
		walls[i], rss[i] = x.wall, x.rss
	}
	slices.Sort(walls)
	slices.Sort(rss)
	return sample{wall: walls[len(walls)/2], rss: rss[len(rss)/2]}
}
