package e2e

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/test/testbed"
)

// daemonRequests returns the requests the daemon's identity made that the API
// server received at or after since.
func daemonRequests(t *testing.T, cp *testbed.ControlPlane, d *testbed.Daemon, since time.Time) []testbed.AuditRequest {
	t.Helper()
	all, err := cp.AuditRequests(d.User)
	if err != nil {
		t.Fatal(err)
	}
	var out []testbed.AuditRequest
	for _, r := range all {
		if !r.Received.Before(since) {
			out = append(out, r)
		}
	}
	return out
}

// TestThickRecreatedPod: a StatefulSet pod deleted and recreated under the same
// name has a new UID. When the runtime's ADD for the new pod comes before the
// daemon's pod watch has delivered the change, the cache still holds the old
// pod; its UID is not the request's K8S_POD_UID, and the daemon must read the pod
// live instead of failing the ADD as a UID mismatch (code 100). The proxy holds
// the pod watch back, so the cache lags on purpose, every run.
func TestThickRecreatedPod(t *testing.T) {
	const v = "1.0.0"
	e := thickEnv(t, nil)
	proxy := testbed.StartAPIProxy(t, e.cp)
	if err := e.daemon.UseAPIProxy(proxy); err != nil {
		t.Fatal(err)
	}
	e.nad("sec", e.recorderConf(v, "sec", nil), nil)
	conf := e.multusConf(v, nil)
	ann := map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"}

	old, sb, _ := e.pod("web-0", ann)
	e.daemon.AwaitCached(t, "pod", e.namespace, "web-0", string(old.UID))
	start := time.Now()
	e.add(conf, sb)
	for _, r := range daemonRequests(t, e.cp, e.daemon, start) {
		if r.Kind() == "get pods" {
			t.Fatalf("precondition: the first ADD read the pod live (%s): the cache did not hold it yet", r.URI)
		}
	}
	e.del(conf, sb)

	proxy.Hold("pods")
	e.deletePod("web-0")
	pod := testbed.CreatePod(e.ctx, t, e.kc, e.namespace, "web-0", ann)
	if pod.UID == old.UID {
		t.Fatal("the recreated pod has the old UID")
	}
	netns := testbed.NewNetNS(t)
	sb2 := testbed.Sandbox{
		Pod:         testbed.Pod{Namespace: e.namespace, Name: "web-0", UID: string(pod.UID)},
		ContainerID: fmt.Sprintf("ctr-%d-web-0-again", e.idx), NetNS: netns.Path,
	}
	start = time.Now()
	_, err := e.rt.Add(e.ctx, conf, sb2)
	proxy.Release("pods")
	if err != nil {
		t.Fatalf("ADD of the recreated pod (UID %s) while the cache held the old one (UID %s): %v\nlog:\n%s",
			pod.UID, old.UID, err, e.log())
	}
	var liveReads []string
	for _, r := range daemonRequests(t, e.cp, e.daemon, start) {
		if r.Kind() == "get pods" && r.Name == "web-0" {
			liveReads = append(liveReads, fmt.Sprintf("%s %d", r.URI, r.Code))
		}
	}
	if len(liveReads) != 1 {
		t.Errorf("live reads of the pod during the ADD: %v; want one, the re-read on the UID mismatch", liveReads)
	}
	st := e.networkStatus("web-0")
	if len(st) != 2 || !slices.ContainsFunc(st, func(s netstatus.Entry) bool { return strings.HasSuffix(s.Name, "/sec") }) {
		t.Errorf("network-status of the recreated pod: %+v, want the cluster network and sec", st)
	}
	e.del(conf, sb2)
}

// usageRow is one kind of request in the table of TestThickAPIUsageOverMinutes.
type usageRow struct {
	kind              string
	beforeSync, after int
	open              int
	shortest, longest time.Duration
	hasDurations      bool
}

// usageTable counts requests by kind, before and after the sync, with how long
// the watches lasted (to now, for those still open), and renders it.
func usageTable(reqs []testbed.AuditRequest, synced, now time.Time) (map[string]*usageRow, string) {
	rows := map[string]*usageRow{}
	for _, r := range reqs {
		row := rows[r.Kind()]
		if row == nil {
			row = &usageRow{kind: r.Kind()}
			rows[r.Kind()] = row
		}
		if r.Received.Before(synced) {
			row.beforeSync++
		} else {
			row.after++
		}
		if r.Verb != "watch" {
			continue
		}
		d := r.Lasted(now).Round(time.Second)
		if r.Open() {
			row.open++
		}
		if !row.hasDurations || d < row.shortest {
			row.shortest = d
		}
		row.longest = max(row.longest, d)
		row.hasDurations = true
	}
	kinds := make([]string, 0, len(rows))
	for k := range rows {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "request\tbefore sync\tafter sync\twatches open at the end\twatch lasted (shortest-longest)")
	for _, k := range kinds {
		r := rows[k]
		lasted := "-"
		if r.hasDurations {
			lasted = fmt.Sprintf("%s-%s", r.shortest, r.longest)
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\n", k, r.beforeSync, r.after, r.open, lasted)
	}
	w.Flush()
	return rows, b.String()
}

// TestThickAPIUsageOverMinutes runs a daemon for 150 s (this test's cost: two
// and a half minutes of waiting) and counts, from the API server's audit log,
// every request of the daemon's identity by kind. Once the caches synced there
// must be nothing but the informers' two long-running watches (pods, NADs), each
// open for the whole run rather than re-opened every 30 s (the client's request
// timeout once cut them), one status patch per pod ADD, and events: no list, no
// re-watch, no read.
func TestThickAPIUsageOverMinutes(t *testing.T) {
	const v = "1.0.0"
	const window = 150 * time.Second
	e := thickEnv(t, nil)
	synced := time.Now() // the daemon answers /readyz only once its caches synced
	ctx, cancel := context.WithTimeout(context.Background(), window+2*time.Minute)
	t.Cleanup(cancel)
	e.ctx = ctx
	e.nad("sec", e.recorderConf(v, "sec", nil), nil)
	conf := e.multusConf(v, nil)
	addsAt := []time.Duration{5 * time.Second, 60 * time.Second, 120 * time.Second}
	sbs := make([]testbed.Sandbox, len(addsAt))
	for i := range addsAt {
		_, sbs[i], _ = e.pod(fmt.Sprintf("pod-%d", i), map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
	}
	for i, at := range addsAt {
		time.Sleep(time.Until(synced.Add(at)))
		e.add(conf, sbs[i])
		e.del(conf, sbs[i])
	}
	time.Sleep(time.Until(synced.Add(window)))

	now := time.Now()
	rows, table := usageTable(daemonRequests(t, e.cp, e.daemon, time.Time{}), synced, now)
	t.Logf("requests of %s over %s:\n%s", e.daemon.User, now.Sub(synced).Round(time.Second), table)
	for kind, r := range rows {
		switch kind {
		case "watch pods", "watch network-attachment-definitions":
			// The informer lists, then watches: its watch may be received
			// just after the sync point, so count them all.
			if n := r.beforeSync + r.after; n != 1 || r.open != 1 || r.shortest < window {
				t.Errorf("%s: %d requests, %d open, shortest %s; want one, open for the whole %s", kind, n, r.open, r.shortest, window)
			}
		case "patch pods/status":
			if r.after != len(addsAt) {
				t.Errorf("%s: %d after the sync, want %d, one per ADD", kind, r.after, len(addsAt))
			}
		case "create events", "patch events":
		default:
			if r.after != 0 {
				t.Errorf("%s: %d requests after the sync, want none", kind, r.after)
			}
		}
	}
	for _, kind := range []string{"watch pods", "watch network-attachment-definitions"} {
		if rows[kind] == nil {
			t.Errorf("no %s at all", kind)
		}
	}
	if t.Failed() {
		for _, r := range daemonRequests(t, e.cp, e.daemon, time.Time{}) {
			if r.Verb == "watch" || r.Verb == "list" {
				t.Logf("%s received %s, lasted %s (open %v): %s", r.Kind(), r.Received.Format(time.StampMilli), r.Lasted(now), r.Open(), r.URI)
			}
		}
	}
}

// TestThickAPIServerDown stops the kube-apiserver (a private control plane's, by
// its PID) under a running daemon, then starts it again on the same port and
// etcd. While it is down: an ADD that needs the API (a pod the cache does not
// hold) fails with code 11, try again later, having attached and recorded
// nothing; a pod the cache holds is attached from the cache (its status patch
// fails, which ADD tolerates); a DEL of an attached pod succeeds from its
// record. After the restart, the same daemon process (its informers re-list and
// re-watch by themselves) serves a pod created after the restart from its cache,
// with all its networks.
func TestThickAPIServerDown(t *testing.T) {
	const v = "1.0.0"
	e := newEnv(t)
	e.mode = "thick"
	cp := testbed.StartControlPlane(t)
	e.cp = cp
	e.kc, e.nc = cp.AdminClients(t)
	testbed.CreateNamespace(e.ctx, t, e.kc, e.namespace)
	e.daemon = testbed.StartDaemon(t, cp, testbed.DaemonOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	e.ctx = ctx
	e.nad("sec", e.recorderConf(v, "sec", nil), nil)
	conf := e.multusConf(v, nil)
	ann := map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"}
	_, attached, attachedNS := e.pod("pod-1", ann)
	_, cached, cachedNS := e.pod("pod-2", ann)
	for _, sb := range []testbed.Sandbox{attached, cached} {
		e.daemon.AwaitCached(t, "pod", e.namespace, sb.Pod.Name, sb.Pod.UID)
	}
	e.add(conf, attached)
	pid := e.daemon.Process.PID()

	cp.StopAPIServer()
	unknown := testbed.Sandbox{
		Pod:         testbed.Pod{Namespace: e.namespace, Name: "pod-unknown", UID: "5f0c6bd4-0d4e-4a39-9d55-1b1f1d0e0a01"},
		ContainerID: fmt.Sprintf("ctr-%d-unknown", e.idx), NetNS: testbed.NewNetNS(t).Path,
	}
	addsBefore := len(e.recordsFor("ADD"))
	start := time.Now()
	_, err := e.rt.Add(e.ctx, conf, unknown)
	if ce := cniError(t, err); ce.Code != cnicode.TryAgainLater {
		t.Errorf("ADD of a pod the cache lacks, API server down: %v, want code 11\n%s", err, e.log())
	}
	t.Logf("ADD with the API server down failed in %s: %v", time.Since(start).Round(time.Millisecond), err)
	if n := len(e.recordsFor("ADD")) - addsBefore; n != 0 {
		t.Errorf("the failed ADD ran %d delegate ADDs", n)
	}
	if _, err := os.Stat(e.recordFile(unknown)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the failed ADD left an attachment record (%v)", err)
	}

	e.add(conf, cached)
	if got := links(t, cachedNS); len(got["eth0"]) != 1 || e.delegateAdds(cached, "net1") != 1 {
		t.Errorf("pod-2, in the cache, with the API server down: links %v and %d ADDs of sec, want eth0 and sec on net1", got, e.delegateAdds(cached, "net1"))
	}
	delsBefore := len(e.recordsFor("DEL"))
	e.del(conf, attached)
	if got := links(t, attachedNS); len(got) != 1 {
		t.Errorf("links left after DEL with the API server down: %v", got)
	}
	if n := len(e.recordsFor("DEL")) - delsBefore; n != 1 {
		t.Errorf("%d secondary DELs with the API server down, want 1", n)
	}

	restarted := time.Now()
	if err := cp.RestartAPIServer(); err != nil {
		t.Fatal(err)
	}
	if exited, _ := e.daemon.Process.Exited(); exited || e.daemon.Process.PID() != pid {
		t.Fatalf("the daemon did not survive the outage (exited %v)", exited)
	}
	// The informers back off while the server is down; they re-watch on their
	// own once it answers.
	for deadline := time.Now().Add(90 * time.Second); !rewatched(t, cp, e.daemon, restarted); time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon's informers did not watch pods and NADs again within 90 s of the restart\n%s", e.log())
		}
	}
	t.Logf("informers watching again %s after the restart", time.Since(restarted).Round(time.Second))
	_, after, afterNS := e.pod("pod-3", ann)
	e.daemon.AwaitCached(t, "pod", e.namespace, "pod-3", after.Pod.UID)
	start = time.Now()
	e.add(conf, after)
	if got := links(t, afterNS); len(got["eth0"]) != 1 || e.delegateAdds(after, "net1") != 1 {
		t.Errorf("pod-3, created after the restart: links %v and %d ADDs of sec, want eth0 and sec on net1", got, e.delegateAdds(after, "net1"))
	}
	if st := e.networkStatus("pod-3"); len(st) != 2 {
		t.Errorf("pod-3 network-status %+v, want 2 entries", st)
	}
	for _, r := range daemonRequests(t, cp, e.daemon, start) {
		if r.Kind() == "get pods" {
			t.Errorf("the ADD after the restart read pod %s live: the cache did not deliver it", r.Name)
		}
	}
	e.del(conf, after)
	e.del(conf, cached)
	e.del(conf, unknown)
}

// delegateAdds counts the recorder's ADDs for the sandbox's interface ifName.
func (e *env) delegateAdds(sb testbed.Sandbox, ifName string) int {
	n := 0
	for _, r := range e.recordsFor("ADD") {
		if r.Env["CNI_CONTAINERID"] == sb.ContainerID && r.Env["CNI_IFNAME"] == ifName {
			n++
		}
	}
	return n
}

// rewatched reports whether the daemon has started a watch of pods and one of
// NADs since t0.
func rewatched(t *testing.T, cp *testbed.ControlPlane, d *testbed.Daemon, t0 time.Time) bool {
	seen := map[string]bool{}
	for _, r := range daemonRequests(t, cp, d, t0) {
		if r.Verb == "watch" && r.Code < 400 {
			seen[r.Resource] = true
		}
	}
	return seen["pods"] && seen["network-attachment-definitions"]
}
