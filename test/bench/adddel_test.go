package bench

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/polynet-cni/polynet/test/testbed"
)

// adddelCases are the numbers of networks of a pod, the cluster network
// included.
var adddelCases = []int{1, 3, 5}

func caseName(n int) string {
	if n == 1 {
		return "1 network"
	}
	return fmt.Sprintf("%d networks", n)
}

// BenchmarkAddDel measures ADD then DEL of one pod with 1, 3 and 5 networks
// three ways, as one process tree each, started as the runtime starts it:
// directcni calling the delegates through libcni (the floor), the thin multus,
// and multus-shim with a warm multus-daemon. Each round runs every (networks,
// variant) pair once, in a new random order, so the machine's drift hits all
// alike. BENCH_ROUNDS rounds (15 unless set) per b.N. It writes, per pair:
// wall_ms (and wall_ms:add, wall_ms:del), ADD+DEL as the runtime waits for it;
// cpu_ms, the user+system time of the whole tree, the top-level process and
// every plugin it waited for, and for thick also the daemon's own time and its
// reaped plugins' over the same window; rss_mib:<process>, the peak RSS of each
// kind of process, from a second ADD+DEL of the pair under GNU time
// (peakWrappers says why), and the daemon's high water mark over that run.
//
//	BENCH_ROUNDS=15 go test -run '^$' -bench AddDel -benchtime 1x ./test/bench/
func BenchmarkAddDel(b *testing.B) {
	w := newWorld(b, "a", 110, slices.Max(adddelCases))
	pods := map[int]testbed.Pod{}
	for _, n := range adddelCases {
		pods[n] = w.createPod(fmt.Sprintf("adddel-%d", n), n)
	}
	type pair struct {
		n       int
		variant string
	}
	var pairs []pair
	for _, n := range adddelCases {
		for _, v := range variants {
			pairs = append(pairs, pair{n, v})
		}
	}
	col := newCollector("adddel")
	seq := 0
	run := func(p pair, col *collector) {
		netns, err := testbed.CreateNetNS()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = netns.Delete() })
		defer func() {
			if err := netns.Delete(); err != nil {
				b.Error(err)
			}
		}()
		for _, peaks := range []bool{false, true} {
			seq++
			sb := testbed.Sandbox{Pod: pods[p.n], ContainerID: fmt.Sprintf("adddel-%d", seq), NetNS: netns.Path}
			w.measureAddDel(p.variant, sb, p.n, peaks, caseName(p.n), col)
		}
	}
	// A first unrecorded run of every pair makes the bridges, fills the page
	// cache and warms the daemon's caches.
	warm := newCollector("warm-up")
	for _, p := range pairs {
		run(p, warm)
	}
	rounds := envCount(b, "BENCH_ROUNDS", 15)
	b.ResetTimer()
	for b.Loop() {
		for range rounds {
			rand.Shuffle(len(pairs), func(i, j int) { pairs[i], pairs[j] = pairs[j], pairs[i] })
			for _, p := range pairs {
				run(p, col)
			}
		}
	}
	b.StopTimer()
	col.write(b)
	for _, n := range adddelCases {
		floor := medianOf(col.get(caseName(n), direct, "wall_ms", "ms"))
		b.ReportMetric(floor, fmt.Sprintf("direct-ms@%d", n))
		for _, v := range []string{thin, thick} {
			b.ReportMetric(medianOf(col.get(caseName(n), v, "wall_ms", "ms"))/floor, fmt.Sprintf("%s/direct@%d", v, n))
		}
	}
}

// measureAddDel runs ADD then DEL of the sandbox through the variant and adds
// its samples to col: the timed figures for a plain run, the peaks for a run
// with peaks (whose times the wrappers distort, so they are not kept).
func (w *world) measureAddDel(variant string, sb testbed.Sandbox, n int, peaks bool, cse string, col *collector) {
	b := w.tb
	b.Helper()
	var peaksFile string
	meter := daemonMeter{pid: w.daemon.Process.PID()}
	if peaks {
		peaksFile = w.peaksFile
		if variant == thick {
			if err := meter.resetPeak(); err != nil {
				b.Fatal(err)
			}
		}
	}
	daemonBefore, err := meter.cpu()
	if err != nil {
		b.Fatal(err)
	}
	var walls, cpus [2]time.Duration
	for i, cmd := range []string{"ADD", "DEL"} {
		c, err := execCNI(w.ctx, w.invocation(variant, cmd, sb, n, peaks), peaksFile)
		if err != nil {
			w.fail(variant, err)
		}
		walls[i], cpus[i] = c.wall, c.cpu
	}
	daemonAfter, err := meter.cpu()
	if err != nil {
		b.Fatal(err)
	}
	if peaks {
		kinds, err := readPeaks(peaksFile)
		if err != nil {
			b.Fatal(err)
		}
		for kind, mib := range kinds {
			col.add(cse, variant, "rss_mib:"+kind, "MiB", mib)
		}
		if variant == thick {
			mib, err := meter.peakMiB()
			if err != nil {
				b.Fatal(err)
			}
			col.add(cse, variant, "rss_mib:daemon", "MiB", mib)
		}
		return
	}
	cpu := cpus[0] + cpus[1]
	if variant == thick {
		cpu += daemonAfter - daemonBefore
	}
	col.add(cse, variant, "wall_ms", "ms", millis(walls[0]+walls[1]))
	col.add(cse, variant, "wall_ms:add", "ms", millis(walls[0]))
	col.add(cse, variant, "wall_ms:del", "ms", millis(walls[1]))
	col.add(cse, variant, "cpu_ms", "ms", millis(cpu))
}

// fail ends the benchmark with the error and the end of the daemon's log.
func (w *world) fail(variant string, err error) {
	w.tb.Helper()
	if variant == thick {
		w.tb.Fatalf("%s: %v\ndaemon log (%s):\n%s", variant, err, filepath.Base(w.daemon.Process.Log), w.daemon.Process.Tail(40))
	}
	w.tb.Fatalf("%s: %v", variant, err)
}

// medianOf is the median of xs (the upper one of an even count), or 0.
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
