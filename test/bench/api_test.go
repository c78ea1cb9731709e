package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/polynet-cni/polynet/test/testbed"
)

// networksKey is the pod annotation that names a pod's extra networks.
const networksKey = "k8s.v1.cni.cncf.io/networks"

// apiPods is how many pods each case runs; the counts are divided by it.
const apiPods = 10

// apiCase is a pod shape: its extra networks.
type apiCase struct {
	name, id string
	networks []string
}

var apiCases = []apiCase{
	{name: "1 network", id: "1net", networks: []string{"net-1"}},
	{name: "3 networks", id: "3net", networks: []string{"net-1", "net-2", "net-3"}},
}

// apiVariant is one way the runtime reaches us: the plugin's configuration and
// the identity under which it (or the daemon it forwards to) calls the API server.
type apiVariant struct {
	name string
	conf []byte
	user string
}

// BenchmarkAPIRequests counts, at the kube-apiserver, from its audit log, the
// requests one pod's ADD and DEL cost, by verb and resource, for the plugin's
// identity only: the thin plugin with a kubeconfig of the thin manifest's
// role, and the shim with a warm daemon (the thick manifest's role). Each case
// runs apiPods pods one after the other, then waits until the identity's
// requests stop (the daemon sends events in the background), and divides.
// The delegates are the recorder test plugin: what they cost does not matter
// here. Run:
//
//	go test -run '^$' -bench APIRequests -benchtime 1x ./test/bench/
func BenchmarkAPIRequests(b *testing.B) {
	bed := testbed.Require(b)
	cp := testbed.SharedControlPlane(b)
	kc, nc := cp.AdminClients(b)
	ctx := testbed.Context(b)
	tmp := b.TempDir()
	ns := fmt.Sprintf("bench-api-%d", os.Getpid())
	testbed.CreateNamespace(ctx, b, kc, ns)
	recordDir := filepath.Join(tmp, "records")
	for _, n := range apiCases[len(apiCases)-1].networks {
		testbed.CreateNAD(ctx, b, nc, ns, n, recorderNet(n, recordDir), nil)
	}
	pods := map[string][]testbed.Pod{}
	for _, c := range apiCases {
		for i := range apiPods {
			name := fmt.Sprintf("%s-%d", c.id, i)
			p := testbed.CreatePod(ctx, b, kc, ns, name, map[string]string{networksKey: strings.Join(c.networks, ",")})
			pods[c.name] = append(pods[c.name], testbed.Pod{Namespace: ns, Name: name, UID: string(p.UID)})
		}
	}
	// The daemon starts once the pods exist: it answers /readyz only after its
	// caches synced, so they hold every pod, and what it asks for below is what
	// a warm daemon asks for.
	d := testbed.StartDaemon(b, cp, testbed.DaemonOptions{})
	thinUser, kubeconfig := thinIdentity(ctx, b, cp, bed, ns, tmp)
	cluster := json.RawMessage(recorderNet("cluster", recordDir))
	apiVariants := []apiVariant{
		{name: thin, user: thinUser, conf: mustJSON(b, map[string]any{
			"cniVersion": "1.0.0", "name": "multus-cni-network", "type": "multus", "kubeconfig": kubeconfig,
			"cniDir": filepath.Join(tmp, "cni-thin"), "binDir": bed.CNIPluginDir(), "delegates": []any{cluster},
			"logFile": filepath.Join(tmp, "multus.log"),
		})},
		{name: thick, user: d.User, conf: mustJSON(b, map[string]any{
			"cniVersion": "1.0.0", "name": "multus-cni-network", "type": "multus-shim", "daemonSocketDir": d.SocketDir,
			"cniDir": filepath.Join(tmp, "cni-thick"), "binDir": bed.CNIPluginDir(), "delegates": []any{cluster},
		})},
	}
	rt := testbed.NewRuntime([]string{testbed.BinDir(b, "multus", "multus-shim", "recorder"), bed.CNIPluginDir()}, filepath.Join(tmp, "cache"))

	// byRound[variant][case] holds each round's requests by kind.
	byRound := map[string]map[string][]map[string]int{}
	for round := 0; b.Loop(); round++ {
		order := slices.Clone(apiVariants)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, v := range order {
			for _, c := range apiCases {
				prefix := fmt.Sprintf("api-%s-%s-%d", v.name, c.id, round)
				counts, table := apiRun(ctx, b, cp, rt, v, pods[c.name], prefix)
				benchLog("%s, %s, round %d: requests of %s for %d pods (ADD then DEL, one pod after the other):\n%s",
					v.name, c.name, round, v.user, apiPods, table)
				if byRound[v.name] == nil {
					byRound[v.name] = map[string][]map[string]int{}
				}
				byRound[v.name][c.name] = append(byRound[v.name][c.name], counts)
			}
		}
	}
	for _, v := range apiVariants {
		for _, c := range apiCases {
			reportAPI(b, v.name, c, byRound[v.name][c.name])
		}
	}
}

// reportAPI writes the per-pod counts of one variant and case, a sample per
// round, and reports the headline figures.
func reportAPI(b *testing.B, variant string, c apiCase, perRound []map[string]int) {
	kinds := map[string]bool{}
	for _, r := range perRound {
		for k := range r {
			kinds[k] = true
		}
	}
	sorted := make([]string, 0, len(kinds))
	for k := range kinds {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	perPod := func(pick func(kind string) bool) []float64 {
		out := make([]float64, len(perRound))
		for i, r := range perRound {
			for k, n := range r {
				if pick(k) {
					out[i] += float64(n) / apiPods
				}
			}
		}
		return out
	}
	for _, k := range sorted {
		writeResult(b, Result{Bench: "api", Case: c.name, Variant: variant, Metric: "requests:" + k, Unit: "req/pod",
			Samples: perPod(func(kind string) bool { return kind == k })})
	}
	total := perPod(func(string) bool { return true })
	reads := perPod(isRead)
	writeResult(b, Result{Bench: "api", Case: c.name, Variant: variant, Metric: "requests:total", Unit: "req/pod", Samples: total})
	writeResult(b, Result{Bench: "api", Case: c.name, Variant: variant, Metric: "requests:reads", Unit: "req/pod", Samples: reads})
	b.ReportMetric(total[len(total)-1], fmt.Sprintf("%s-%s-req/pod", variant, c.id))
	b.ReportMetric(reads[len(reads)-1], fmt.Sprintf("%s-%s-reads/pod", variant, c.id))
}

// isRead reports whether a kind of request ("verb resource") reads.
func isRead(kind string) bool {
	verb, _, _ := strings.Cut(kind, " ")
	return verb == "get" || verb == "list" || verb == "watch"
}

// apiRun runs ADD then DEL of each pod in a fresh sandbox, one pod after the
// other, waits until the identity's requests stop, and returns them by kind
// ("verb resource[/subresource]") with a table that also tells in which
// command's window each kind arrived.
func apiRun(ctx context.Context, b *testing.B, cp *testbed.ControlPlane, rt *testbed.Runtime, v apiVariant,
	pods []testbed.Pod, prefix string) (map[string]int, string) {
	b.Helper()
	sbs, nss := newSandboxes(b, pods, prefix)
	defer deleteNetNS(b, nss)
	type window struct {
		command    string
		start, end time.Time
	}
	var windows []window
	since := time.Now()
	for _, sb := range sbs {
		start := time.Now()
		if _, err := rt.Add(ctx, v.conf, sb); err != nil {
			b.Fatalf("%s ADD of %s: %v", v.name, sb.Pod.Name, err)
		}
		windows = append(windows, window{"ADD", start, time.Now()})
		start = time.Now()
		if err := rt.Del(ctx, v.conf, sb); err != nil {
			b.Fatalf("%s DEL of %s: %v", v.name, sb.Pod.Name, err)
		}
		windows = append(windows, window{"DEL", start, time.Now()})
	}
	reqs := quietRequests(b, cp, v.user, since)
	counts := map[string]int{}
	during := map[string]map[string]int{}
	for _, r := range reqs {
		k := r.Kind()
		counts[k]++
		when := "after"
		for _, w := range windows {
			if !r.Received.Before(w.start) && !r.Received.After(w.end) {
				when = w.command
				break
			}
		}
		if during[k] == nil {
			during[k] = map[string]int{}
		}
		during[k][when]++
	}
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var out strings.Builder
	w := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "request\ttotal\tper pod\tduring ADD\tduring DEL\tafter")
	for _, k := range kinds {
		fmt.Fprintf(w, "%s\t%d\t%.2f\t%d\t%d\t%d\n", k, counts[k], float64(counts[k])/float64(len(pods)),
			during[k]["ADD"], during[k]["DEL"], during[k]["after"])
	}
	w.Flush()
	return counts, out.String()
}

// quietRequests returns the requests user made from since on, once their
// number has held for three reads of the audit log a second apart (bounded at
// a minute): the daemon's events go out in the background after the CNI calls
// return.
func quietRequests(b *testing.B, cp *testbed.ControlPlane, user string, since time.Time) []testbed.AuditRequest {
	b.Helper()
	const stableReads, bound = 3, time.Minute
	var counts []int
	var reqs []testbed.AuditRequest
	for deadline := time.Now().Add(bound); ; time.Sleep(time.Second) {
		all, err := cp.AuditRequests(user)
		if err != nil {
			b.Fatal(err)
		}
		reqs = reqs[:0]
		for _, r := range all {
			if !r.Received.Before(since) {
				reqs = append(reqs, r)
			}
		}
		counts = append(counts, len(reqs))
		if n := len(counts); n >= stableReads && counts[n-1] == counts[n-stableReads] {
			return reqs
		}
		if time.Now().After(deadline) {
			benchLog("the requests of %s did not stop within %s: %v", user, bound, counts)
			return reqs
		}
	}
}

// thinIdentity makes a ServiceAccount bound to the thin manifest's ClusterRole,
// writes a kubeconfig of it, and returns its user name in the audit log and
// the kubeconfig's path.
func thinIdentity(ctx context.Context, b *testing.B, cp *testbed.ControlPlane, bed testbed.Bed, ns, dir string) (string, string) {
	b.Helper()
	rules, err := testbed.ClusterRoleRules(filepath.Join(bed.Root, testbed.ThinManifest))
	if err != nil {
		b.Fatal(err)
	}
	const account = "multus-thin"
	cfg, err := cp.ServiceAccount(ctx, ns, account, rules, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := testbed.WriteKubeconfig(path, cfg); err != nil {
		b.Fatal(err)
	}
	return "system:serviceaccount:" + ns + ":" + account, path
}

// recorderNet is the configuration of a recorder delegate: a plugin that
// records its call and creates nothing, so only our own work is measured.
func recorderNet(name, recordDir string) string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"recorder","recordDir":%q}`, name, recordDir)
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
