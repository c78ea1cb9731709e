package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/test/testbed"
)

// The node the daemon serves: scalePods pods bound to it and scaleNADs NADs,
// spread over scaleNamespaces namespaces; bursts of each size in scaleBursts.
const (
	scalePods       = 500
	scaleNADs       = 200
	scaleNamespaces = 4
	idleWindow      = 10 * time.Second
	timelineEvery   = 100 * time.Millisecond
)

var scaleBursts = []int{50, 100, 200}

// BenchmarkDaemonScale measures multus-daemon on a node of scalePods pods with
// scaleNADs NADs in its caches, on a control plane of its own so that nothing
// else is in them: its RSS, heap (after a forced collection) and CPU at rest,
// once its caches synced and its RSS settled; then, for bursts of 50, 100 and
// 200 pods added at once (a network namespace each, the recorder as the
// cluster network and as the pod's one extra network), its peak RSS during the
// ADDs (VmHWM, reset before), and its RSS every 100 ms through the ADDs and the
// DELs that follow, each burst on a daemon restarted for it. The daemon runs
// with the default in-flight bound (maxInFlight); the runtime retries what it
// refuses, so a burst past the bound should cost no more memory than the bound
// allows. Run:
//
//	go test -run '^$' -bench DaemonScale -benchtime 1x -timeout 40m ./test/bench/
//
// (which also runs BenchmarkDaemonScaleDRA, the same idle daemon with and
// without Dynamic Resource Allocation's objects). With BENCH_PROFILE_DIR set,
// heap profiles of the daemon at rest and after the largest burst are written
// there, for `go tool pprof -top`; the daemon inherits the environment, so
// GODEBUG=memprofilerate=4096 makes them finer.
func BenchmarkDaemonScale(b *testing.B) {
	bed := testbed.Require(b)
	cp := testbed.StartControlPlane(b)
	kc, nc := cp.AdminClients(b)
	ctx := testbed.Context(b)
	tmp := b.TempDir()
	recordDir := filepath.Join(tmp, "records")
	pods := populateNode(ctx, b, kc, nc, recordDir)
	pprofPort := loopbackPort(b)
	d := testbed.StartDaemon(b, cp, testbed.DaemonOptions{Config: map[string]any{
		"metricsPort": pprofPort, "metricsAddress": "127.0.0.1", "enablePprof": true,
	}})
	pprofURL := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap", pprofPort)
	conf := mustJSON(b, map[string]any{
		"cniVersion": "1.0.0", "name": "multus-cni-network", "type": "multus-shim", "daemonSocketDir": d.SocketDir,
		"cniDir": filepath.Join(tmp, "cni"), "binDir": bed.CNIPluginDir(),
		"delegates": []any{json.RawMessage(recorderNet("cluster", recordDir))},
	})
	rt := testbed.NewRuntime([]string{testbed.BinDir(b, "multus-shim", "recorder"), bed.CNIPluginDir()}, filepath.Join(tmp, "cache"))
	benchLog("daemon pid %d, maxInFlight %d (the default), %d pods on its node, %d NADs", d.Process.PID(), config.DefaultMaxInFlight, scalePods, scaleNADs)

	idle := map[string][]float64{}
	bursts := map[int][]daemonBurst{}
	// Every measurement gets a daemon that has served no burst and no heap
	// profile, so that what one left in its heap raises neither the next
	// burst's peak nor the next round's rest: the sizes differ in nothing else.
	used := false
	fresh := func() {
		if used {
			if err := d.Restart(); err != nil {
				b.Fatal(err)
			}
		}
		used = false
	}
	for round := 0; b.Loop(); round++ {
		fresh()
		for k, v := range scaleIdle(b, d.Process.PID(), pprofURL) {
			idle[k] = append(idle[k], v)
		}
		saveProfile(b, pprofURL, fmt.Sprintf("daemon-heap-idle-%d.pb.gz", round))
		used = true
		for i, size := range scaleBursts {
			fresh()
			r := scaleBurst(ctx, b, rt, conf, d.Process.PID(), pods[:size], round)
			used = true
			bursts[size] = append(bursts[size], r)
			benchLog("after burst %d: %s", size, memStats(pprofURL))
			if i == len(scaleBursts)-1 {
				saveProfile(b, pprofURL, fmt.Sprintf("daemon-heap-after-burst-%d-%d.pb.gz", size, round))
			}
		}
	}
	reportScale(b, idle, bursts)
}

// scaleIdle measures the daemon at rest once its RSS settled: its RSS, how
// much of it is anonymous memory and how much the binary's mapped file pages,
// and its CPU time over idleWindow.
func scaleIdle(b *testing.B, pid int, pprofURL string) map[string]float64 {
	b.Helper()
	rss, settled := settle(b, pid)
	cpu0, err := procCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(idleWindow) // the measurement window itself, not a wait
	cpu1, err := procCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{
		"rss_mib_idle": rss, "cpu_ms_idle": float64(cpu1-cpu0) / float64(time.Millisecond),
		"rss_anon_mib_idle": mib(b, pid, "RssAnon"), "rss_file_mib_idle": mib(b, pid, "RssFile"),
		"rss_mib_peak_since_start": mib(b, pid, "VmHWM"), // the caches' first lists included
	}
	// The heap after a collection: what the daemon holds, not what garbage
	// its last collection left.
	ms, err := readMemStats(pprofURL, true)
	if err != nil {
		b.Fatal(err)
	}
	out["heap_inuse_mib_idle"], out["heap_alloc_mib_idle"] = ms["HeapInuse"]/(1<<20), ms["HeapAlloc"]/(1<<20)
	benchLog("at rest: RSS %.1f MiB (settled: %v; anonymous %.1f, file %.1f; peak since start %.1f), CPU %s over %s; after a forced GC, memstats %s",
		rss, settled, out["rss_anon_mib_idle"], out["rss_file_mib_idle"], out["rss_mib_peak_since_start"], cpu1-cpu0, idleWindow, formatMemStats(ms))
	return out
}

// idleMetrics are the figures scaleIdle measures, with their units.
var idleMetrics = []struct{ metric, unit string }{
	{"rss_mib_idle", "MiB"}, {"rss_anon_mib_idle", "MiB"}, {"rss_file_mib_idle", "MiB"}, {"rss_mib_peak_since_start", "MiB"},
	{"heap_inuse_mib_idle", "MiB"}, {"heap_alloc_mib_idle", "MiB"}, {"cpu_ms_idle", "ms/10s"},
}

// reportScale writes the figures of every round, one line a metric, and
// reports the headline ones.
func reportScale(b *testing.B, idle map[string][]float64, bursts map[int][]daemonBurst) {
	const caseIdle = "500 pods, 200 NADs"
	for _, m := range idleMetrics {
		writeResult(b, Result{Bench: "daemon", Case: caseIdle, Variant: thick, Metric: m.metric, Unit: m.unit, Samples: idle[m.metric]})
	}
	last := func(v []float64) float64 { return v[len(v)-1] }
	b.ReportMetric(last(idle["rss_mib_idle"]), "idle-MiB")
	b.ReportMetric(last(idle["cpu_ms_idle"]), "idle-cpu-ms/10s")
	for _, size := range scaleBursts {
		var peak, start, refused []float64
		for _, r := range bursts[size] {
			peak, start, refused = append(peak, r.peak), append(start, r.start), append(refused, float64(r.refused))
		}
		c := fmt.Sprintf("burst %d", size)
		timeline := bursts[size][len(bursts[size])-1].timeline
		for _, r := range []Result{
			{Metric: "rss_mib_burst_peak", Unit: "MiB", Samples: peak},
			{Metric: "rss_mib_burst_start", Unit: "MiB", Samples: start},
			{Metric: "refusals", Unit: "count", Samples: refused},
			{Metric: "rss_mib_timeline", Unit: "MiB", Samples: timeline, IntervalMS: float64(timelineEvery / time.Millisecond)},
		} {
			r.Bench, r.Case, r.Variant = "daemon", c, thick
			writeResult(b, r)
		}
		b.ReportMetric(last(peak), fmt.Sprintf("burst%d-peak-MiB", size))
	}
}

// daemonBurst is what one burst did to the daemon's memory, in MiB.
type daemonBurst struct {
	start, peak float64
	refused     int64
	// timeline is the RSS every timelineEvery, through the ADDs and the DELs.
	timeline []float64
}

// scaleBurst adds the pods at once, each in a new sandbox, then deletes them
// at once, sampling the daemon's RSS throughout; its peak is that of the ADDs.
func scaleBurst(ctx context.Context, b *testing.B, rt *testbed.Runtime, conf []byte, pid int, pods []testbed.Pod, round int) daemonBurst {
	b.Helper()
	name := fmt.Sprintf("burst %d", len(pods))
	sbs, nss := newSandboxes(b, pods, fmt.Sprintf("scale-%d-%d", round, len(pods)))
	defer deleteNetNS(b, nss)
	start, _ := settle(b, pid)
	if err := resetPeak(pid); err != nil {
		b.Fatal(err)
	}
	timeline := sampleRSS(pid, timelineEvery)
	adds := cniBurst(ctx, sbs, func(ctx context.Context, sb testbed.Sandbox) error { _, err := rt.Add(ctx, conf, sb); return err })
	peak := mib(b, pid, "VmHWM")
	delsAt := timeline.elapsed()
	dels := cniBurst(ctx, sbs, func(ctx context.Context, sb testbed.Sandbox) error { return rt.Del(ctx, conf, sb) })
	samples := timeline.end()
	for _, st := range []burstStats{adds, dels} {
		for i, err := range st.failed {
			if i == 3 {
				b.Errorf("%s: %d more failures", name, len(st.failed)-i)
				break
			}
			b.Errorf("%s: %v", name, err)
		}
	}
	benchLog("%s (daemon pid %d): RSS %.1f MiB before, peak %.1f MiB during the ADDs (%s, %d refusals retried), DELs %s (%d refusals), %.1f MiB after; timeline of %d points %s apart, the DELs from %s",
		name, pid, start, peak, adds.took.Round(time.Millisecond), adds.refused, dels.took.Round(time.Millisecond), dels.refused,
		mib(b, pid, "VmRSS"), len(samples), timelineEvery, delsAt.Round(timelineEvery))
	return daemonBurst{start: start, peak: peak, refused: adds.refused, timeline: samples}
}

// populateNode creates the NADs and the pods bound to testbed.NodeName, a few
// at a time, and returns the pods interleaved across the namespaces. Each pod
// names one NAD of its namespace. Everything exists before the daemon starts,
// so its first list fills its caches.
func populateNode(ctx context.Context, b *testing.B, kc kubernetes.Interface, nc nadclient.Interface, recordDir string) []testbed.Pod {
	b.Helper()
	nadsPerNS, podsPerNS := scaleNADs/scaleNamespaces, scalePods/scaleNamespaces
	for i := range scaleNamespaces {
		testbed.CreateNamespace(ctx, b, kc, fmt.Sprintf("scale-%d", i))
	}
	start := time.Now()
	createAll(b, scaleNADs, func(i int) error {
		ns, name := fmt.Sprintf("scale-%d", i%scaleNamespaces), fmt.Sprintf("net-%d", i/scaleNamespaces)
		nad := &nadv1.NetworkAttachmentDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: recorderNet(name, recordDir)},
		}
		cctx, cancel := context.WithTimeout(ctx, testbed.CallTimeout)
		defer cancel()
		_, err := nc.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Create(cctx, nad, metav1.CreateOptions{})
		return err
	})
	pods := make([]testbed.Pod, scalePods)
	createAll(b, scalePods, func(i int) error {
		ns, name := fmt.Sprintf("scale-%d", i%scaleNamespaces), fmt.Sprintf("pod-%d", i/scaleNamespaces)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: ns,
				Labels:      map[string]string{"app": "scale", "pod-template-hash": "5d8c7b9f6"},
				Annotations: map[string]string{networksKey: fmt.Sprintf("net-%d", (i/scaleNamespaces)%nadsPerNS)},
			},
			Spec: corev1.PodSpec{
				NodeName: testbed.NodeName,
				Containers: []corev1.Container{{
					Name: "app", Image: "registry.k8s.io/pause:3.10",
					Env: []corev1.EnvVar{{Name: "POD_INDEX", Value: fmt.Sprint(i)}},
				}},
			},
		}
		cctx, cancel := context.WithTimeout(ctx, testbed.CallTimeout)
		defer cancel()
		created, err := kc.CoreV1().Pods(ns).Create(cctx, pod, metav1.CreateOptions{})
		if err == nil {
			pods[i] = testbed.Pod{Namespace: ns, Name: name, UID: string(created.UID)}
		}
		return err
	})
	benchLog("created %d NADs and %d pods (%d a namespace) in %s", scaleNADs, scalePods, podsPerNS, time.Since(start).Round(time.Millisecond))
	return pods
}

// createAll runs f for 0..n-1 on a few goroutines and fails b with the first error.
func createAll(b *testing.B, n int, f func(i int) error) {
	b.Helper()
	const workers = 8
	next := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// loopbackPort asks the kernel for a free loopback port.
func loopbackPort(b *testing.B) int {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// memStats is the daemon's Go memory in a line: where its RSS goes.
func memStats(heapURL string) string {
	ms, err := readMemStats(heapURL, false)
	if err != nil {
		return "memstats: " + err.Error()
	}
	return "memstats " + formatMemStats(ms)
}

// readMemStats reads the daemon's runtime.MemStats, which its heap profile
// prints in text form; after a collection when gc is set.
func readMemStats(heapURL string, gc bool) (map[string]float64, error) {
	query := "?debug=1"
	if gc {
		query += "&gc=1"
	}
	body, err := httpGet(heapURL + query)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), " = "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(strings.SplitN(v, " ", 2)[0]), 64); err == nil {
				out[k] = f
			}
		}
	}
	if _, ok := out["HeapInuse"]; !ok {
		return nil, fmt.Errorf("GET %s%s: no MemStats", heapURL, query)
	}
	return out, nil
}

// formatMemStats prints the figures of the MemStats that say where the RSS goes.
func formatMemStats(ms map[string]float64) string {
	var parts []string
	for _, k := range []string{"HeapAlloc", "HeapInuse", "HeapIdle", "HeapReleased", "Stack", "MSpan", "GCSys", "OtherSys", "Sys", "NumGC"} {
		if v, ok := ms[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%.0f", k, v))
		}
	}
	return strings.Join(parts, " ")
}

// saveProfile writes the daemon's heap profile to BENCH_PROFILE_DIR, when set.
func saveProfile(b *testing.B, heapURL, name string) {
	b.Helper()
	dir := os.Getenv("BENCH_PROFILE_DIR")
	if dir == "" {
		return
	}
	body, err := httpGet(heapURL)
	if err != nil {
		benchLog("heap profile: %v", err)
		return
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, body, 0o644); err != nil {
		b.Fatal(err)
	}
	benchLog("heap profile: %s", path)
}

func httpGet(url string) ([]byte, error) {
	c := &http.Client{Timeout: testbed.CallTimeout}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}
