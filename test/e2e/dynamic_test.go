package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"

	"github.com/polynet-cni/polynet/test/testbed"
)

// dynamicEnv is a thick env whose daemon of its own follows the pods'
// networks annotation (dynamicNetworks), keeps its records in the test's
// cniDir and finds the reference plugins itself, as a node's daemon does.
func dynamicEnv(t *testing.T) *env {
	t.Helper()
	e := newEnvOn(t, testbed.SharedControlPlane(t), nil)
	e.mode = "thick"
	e.daemon = testbed.StartDaemon(t, e.cp, testbed.DaemonOptions{Config: map[string]any{
		"dynamicNetworks": true, "cniDir": e.cniDir, "binDir": e.bed.CNIPluginDir(),
	}})
	return e
}

// setNetworks sets the pod's networks annotation; "" removes it.
func (e *env) setNetworks(name, value string) {
	e.t.Helper()
	var v any = value
	if value == "" {
		v = nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{"k8s.v1.cni.cncf.io/networks": v}}})
	if _, err := e.kc.CoreV1().Pods(e.namespace).Patch(e.ctx, name, ktypes.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// podView is the pod's interfaces as `ip link` in its netns shows them and as
// its network-status names them, both sorted, lo and the cluster network left
// out of neither.
type podView struct {
	links, status []string
}

func (e *env) view(name string, netns *testbed.NetNS) podView {
	e.t.Helper()
	var v podView
	for l := range links(e.t, netns) {
		v.links = append(v.links, l)
	}
	sort.Strings(v.links)
	for _, en := range e.networkStatus(name) {
		v.status = append(v.status, en.Interface+"="+strings.TrimPrefix(en.Name, e.namespace+"/"))
	}
	sort.Strings(v.status)
	return v
}

// awaitView waits until the pod's links and network-status are the ones
// given, and returns how long that took; it fails the test, with the daemon's
// log, if they never are.
func (e *env) awaitView(name string, netns *testbed.NetNS, links, status []string) time.Duration {
	e.t.Helper()
	start := time.Now()
	want := podView{links: slices.Sorted(slices.Values(links)), status: slices.Sorted(slices.Values(status))}
	var got podView
	for deadline := start.Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = e.view(name, netns); slices.Equal(got.links, want.links) && slices.Equal(got.status, want.status) {
			return time.Since(start)
		}
	}
	e.t.Fatalf("pod %s: links %v, network-status %v; want links %v, network-status %v\ndaemon log:\n%s",
		name, got.links, got.status, want.links, want.status, e.log())
	return 0
}

// TestDynamicNetworks: with dynamicNetworks on, a running pod follows its
// networks annotation through the real daemon, the real API server and the
// reference plugins: it gains a bridge network, then a macvlan network, then
// loses the first while the second keeps its name; `ip link` in the pod and
// network-status agree at each step. An invalid annotation and a network that
// fails to attach change nothing and say why in events. Changes made while the
// daemon is down are made when it is back. The pod's DEL leaves nothing. It
// logs the time from the annotation's change to the interface, and the API
// requests each change cost.
func TestDynamicNetworks(t *testing.T) {
	const v = "1.0.0"
	e := dynamicEnv(t)
	master := fmt.Sprintf("dym%d", e.idx)
	addBridge(t, master)
	second := fmt.Sprintf("dyb%d", e.idx)
	t.Cleanup(func() { deleteLink(t, second) })
	e.nad("blue", fmt.Sprintf(`{"cniVersion":%q,"name":"blue","type":"bridge","bridge":%q,
		"ipam":{"type":"host-local","subnet":"192.168.%d.0/24","dataDir":%q}}`, v, second, e.idx%250, e.dataDir), nil)
	e.nad("red", fmt.Sprintf(`{"cniVersion":%q,"name":"red","type":"macvlan","master":%q,"mode":"bridge",
		"ipam":{"type":"host-local","subnet":"192.169.%d.0/24","dataDir":%q}}`, v, master, e.idx%250, e.dataDir), nil)
	// Its ADD fails (no such master), its DEL succeeds, as a real failure's.
	e.nad("broken", fmt.Sprintf(`{"cniVersion":%q,"name":"broken","type":"macvlan","master":"nosuch%d",
		"ipam":{"type":"host-local","subnet":"192.170.%d.0/24","dataDir":%q}}`, v, e.idx, e.idx%250, e.dataDir), nil)
	conf := e.multusConf(v, nil)
	_, sb, netns := e.pod("pod-1", nil)
	e.add(conf, sb)
	e.awaitView("pod-1", netns, []string{"lo", "eth0"}, []string{"eth0=cluster-net"})

	step := func(networks string, links, status []string) {
		t.Helper()
		since := time.Now()
		e.setNetworks("pod-1", networks)
		took := e.awaitView("pod-1", netns, links, status)
		t.Logf("networks %q: interfaces and network-status in %s; API requests of the daemon: %s",
			networks, took.Round(time.Millisecond), requestKinds(e.daemonRequestsSince(since)))
	}
	step("blue", []string{"lo", "eth0", "net1"}, []string{"eth0=cluster-net", "net1=blue"})
	step("blue,red", []string{"lo", "eth0", "net1", "net2"}, []string{"eth0=cluster-net", "net1=blue", "net2=red"})
	step("red", []string{"lo", "eth0", "net2"}, []string{"eth0=cluster-net", "net2=red"})
	if evs := e.eventsWith("pod-1", "RemovedInterface: Remove net1 from "+e.namespace+"/blue"); !strings.Contains(evs, "AddedInterface: Add net2") ||
		!strings.Contains(evs, "RemovedInterface: Remove net1 from "+e.namespace+"/blue") {
		t.Errorf("events lack the changes:\n%s", evs)
	}

	// An invalid annotation changes nothing, and says so.
	e.setNetworks("pod-1", `[{"name":"blue"`)
	if evs := e.eventsWith("pod-1", "InvalidNetworkSelection"); !strings.Contains(evs, "InvalidNetworkSelection") {
		t.Errorf("no event for the invalid annotation:\n%s", evs)
	}
	e.awaitView("pod-1", netns, []string{"lo", "eth0", "net2"}, []string{"eth0=cluster-net", "net2=red"})

	// A network whose plugin fails is rolled back and reported; the pod keeps
	// what it had, and the record lists no more than the pod has.
	e.setNetworks("pod-1", "red,broken")
	if evs := e.eventsWith("pod-1", "NetworkAttachmentFailed"); !strings.Contains(evs, "broken") {
		t.Errorf("no failure event naming the network:\n%s", evs)
	}
	e.awaitView("pod-1", netns, []string{"lo", "eth0", "net2"}, []string{"eth0=cluster-net", "net2=red"})
	if rec := readFile(e.recordFile(sb)); strings.Contains(rec, "broken") {
		t.Errorf("the failed network is still recorded:\n%s", rec)
	}

	// Changed while the daemon is down: reconciled when it is back.
	e.daemon.Process.Stop(15 * time.Second)
	e.setNetworks("pod-1", "blue,red")
	if err := e.daemon.Start(); err != nil {
		t.Fatal(err)
	}
	e.awaitView("pod-1", netns, []string{"lo", "eth0", "net1", "net2"}, []string{"eth0=cluster-net", "net1=blue", "net2=red"})

	// Changes in quick succession, none waited for: the pod ends as the last
	// one says, whatever the daemon saw of those between.
	for _, networks := range []string{"red", "", "blue", `[{"name":"red","interface":"r0"},{"name":"blue"}]`} {
		e.setNetworks("pod-1", networks)
	}
	e.awaitView("pod-1", netns, []string{"lo", "eth0", "net2", "r0"}, []string{"eth0=cluster-net", "net2=blue", "r0=red"})

	e.del(conf, sb)
	if got := links(t, netns); len(got) != 1 {
		t.Errorf("links left after DEL: %v", got)
	}
}

// daemonRequestsSince are the daemon's requests received since.
func (e *env) daemonRequestsSince(since time.Time) []testbed.AuditRequest {
	return daemonRequests(e.t, e.cp, e.daemon, since)
}

// requestKinds counts requests by kind: "get pods x1, patch pods/status x1".
func requestKinds(reqs []testbed.AuditRequest) string {
	count := map[string]int{}
	for _, r := range reqs {
		if r.Kind() == "get /readyz" || r.Kind() == "get /healthz" {
			continue
		}
		count[r.Kind()]++
	}
	var out []string
	for k, n := range count {
		out = append(out, fmt.Sprintf("%s x%d", k, n))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
