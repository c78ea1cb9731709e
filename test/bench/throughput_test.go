package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polynet-cni/polynet/test/testbed"
)

// throughputPods is how many pods each burst adds at once.
const throughputPods = 100

// tpBackoff is how long a refused call (CNI code 11) waits before it is
// made again: the runtime's back-off, not a wait for a condition.
const tpBackoff = 50 * time.Millisecond

// BenchmarkThroughput adds 100 pods at once, each with the cluster network and
// one NAD (bridge + host-local on bridges of their own), then deletes them all
// at once, through each variant in turn (in a new random order each round).
// It writes, for the cases "100 pods ADD" and "100 pods DEL", per variant:
// makespan_ms, from the start of the burst until the last pod is done;
// latency_ms, each pod's time until its call succeeded, refusals retried; and
// retries, the refusals (code 11, the daemon's in-flight bound) retried.
// BENCH_BURST_ROUNDS rounds (3 unless set) per b.N.
//
//	BENCH_BURST_ROUNDS=3 go test -run '^$' -bench Throughput -benchtime 1x ./test/bench/
func BenchmarkThroughput(b *testing.B) {
	const networks = 2
	w := newWorld(b, "t", 120, networks)
	// One unrecorded pod per variant makes the bridges and warms the caches.
	warm := newCollector("warm-up")
	for _, v := range variants {
		w.burstRound(v, 1, networks, fmt.Sprintf("warm-%s", v), warm)
	}
	col := newCollector("throughput")
	rounds := envCount(b, "BENCH_BURST_ROUNDS", 3)
	order := append([]string(nil), variants...)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for r := range rounds {
			rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			for _, v := range order {
				w.burstRound(v, throughputPods, networks, fmt.Sprintf("tp-%d-%d-%s", i, r, v), col)
			}
		}
	}
	b.StopTimer()
	col.write(b)
	cse := fmt.Sprintf("%d pods ADD", throughputPods)
	floor := medianOf(col.get(cse, direct, "makespan_ms", "ms"))
	for _, v := range []string{thin, thick} {
		b.ReportMetric(medianOf(col.get(cse, v, "makespan_ms", "ms"))/floor, v+"/direct-makespan")
	}
}

// burstRound creates pods with a sandbox each (not timed), adds them all at
// once, deletes them all at once, and removes them.
func (w *world) burstRound(variant string, pods, networks int, prefix string, col *collector) {
	b := w.tb
	b.Helper()
	sbs := make([]testbed.Sandbox, pods)
	nss := make([]*testbed.NetNS, pods)
	for i := range sbs {
		name := fmt.Sprintf("%s-%d", prefix, i)
		pod := w.createPod(name, networks)
		ns, err := testbed.CreateNetNS()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = ns.Delete() })
		nss[i] = ns
		sbs[i] = testbed.Sandbox{Pod: pod, ContainerID: name, NetNS: ns.Path}
	}
	for _, cmd := range []string{"ADD", "DEL"} {
		st := w.concurrently(variant, cmd, sbs, networks)
		if len(st.failed) > 0 {
			w.fail(variant, fmt.Errorf("%d of %d %ss failed, the first: %w", len(st.failed), pods, cmd, st.failed[0]))
		}
		cse := fmt.Sprintf("%d pods %s", throughputPods, cmd)
		col.add(cse, variant, "makespan_ms", "ms", millis(st.makespan))
		for _, l := range st.latencies {
			col.add(cse, variant, "latency_ms", "ms", millis(l))
		}
		col.add(cse, variant, "retries", "count", float64(st.retries))
	}
	for i, ns := range nss {
		if err := ns.Delete(); err != nil {
			b.Error(err)
		}
		w.deletePod(sbs[i].Pod.Name)
	}
}

// tpBurst is what one burst of calls came to.
type tpBurst struct {
	makespan  time.Duration
	latencies []time.Duration
	retries   int64
	failed    []error
}

// concurrently makes the command's call for every sandbox at the same moment
// and waits for all; a refusal (code 11) is retried after tpBackoff, as
// the kubelet retries a sandbox whose network set-up was refused.
func (w *world) concurrently(variant, cmd string, sbs []testbed.Sandbox, networks int) tpBurst {
	var (
		res     = tpBurst{latencies: make([]time.Duration, len(sbs))}
		retries atomic.Int64
		mu      sync.Mutex
		wg      sync.WaitGroup
		gate    = make(chan struct{})
		start   time.Time
	)
	invs := make([]invocation, len(sbs))
	for i, sb := range sbs {
		invs[i] = w.invocation(variant, cmd, sb, networks, false)
	}
	for i := range sbs {
		wg.Go(func() {
			<-gate
			for {
				_, err := execCNI(w.ctx, invs[i], "")
				if errors.Is(err, errRefused) && w.ctx.Err() == nil {
					retries.Add(1)
					tpSleep(w.ctx, tpBackoff)
					continue
				}
				res.latencies[i] = time.Since(start)
				if err != nil {
					mu.Lock()
					res.failed = append(res.failed, fmt.Errorf("%s: %w", sbs[i].Pod.Name, err))
					mu.Unlock()
				}
				return
			}
		})
	}
	start = time.Now()
	close(gate)
	wg.Wait()
	res.makespan, res.retries = time.Since(start), retries.Load()
	return res
}

// tpSleep waits for d or until ctx ends.
func tpSleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
