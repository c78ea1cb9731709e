package engine

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
)

// Delegate configurations of the GC tests. Their "name" is the network name
// libcni caches attachments under, which is not the attachment's Network.
const (
	netAConfig = `{"cniVersion":"1.0.0","name":"net-a","type":"macvlan","master":"eth1"}`
	netBConfig = `{"cniVersion":"1.0.0","name":"net-b","plugins":[{"type":"ipvlan"},{"type":"tuning"}]}`
)

// gcAttachments are the attachments of every record of the GC tests: the cluster
// network, then net-a and net-b.
var gcAttachments = []podnet.Attachment{
	{Network: "cbr0", IfName: "eth0", Config: []byte(clusterDelegate), Default: true},
	{Network: "ns1/net-a", IfName: "net1", Config: []byte(netAConfig)},
	{Network: "ns1/net-b", IfName: "net2", Config: []byte(netBConfig)},
}

// gcRequest builds a GC request.
func gcRequest(t *testing.T) *request.Request {
	t.Helper()
	req, err := request.FromEnv(request.GC, func(k string) string {
		if k == "CNI_PATH" {
			return "/opt/cni/bin"
		}
		return ""
	}, nil)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	return req
}

// gcConf is the plugin configuration of the GC tests: the inline cbr0 cluster
// network and the runtime's valid attachments, each "containerID/ifname".
func gcConf(t *testing.T, dir string, valid ...string) *config.PluginConf {
	t.Helper()
	conf := defaultConf(t, dir, "")
	for _, v := range valid {
		id, ifName, _ := strings.Cut(v, "/")
		conf.ValidAttachments = append(conf.ValidAttachments, config.Attachment{ContainerID: id, IfName: ifName})
	}
	return conf
}

// saveRecord records a sandbox created age before the test clock, with
// CNI_IFNAME eth0 and the given attachments.
func saveRecord(t *testing.T, e *Engine, id string, age time.Duration, atts []podnet.Attachment) {
	t.Helper()
	rec := &podnet.Record{
		ContainerID: id, IfName: "eth0", NetNS: "/var/run/netns/" + id, CNIVersion: "1.0.0",
		Created: testNow.Add(-age), Attachments: atts,
	}
	if err := e.Records.Save(rec); err != nil {
		t.Fatalf("saving record %s: %v", id, err)
	}
}

// writeCorrupt makes id's record one that cannot be read, and returns the error
// Load gives for it.
func writeCorrupt(t *testing.T, e *Engine, id string) error {
	t.Helper()
	return recordsOf(e).corrupt(id, "does not decode: unexpected EOF")
}

// hasRecord reports whether id's record, readable or not, is still there.
func hasRecord(e *Engine, id string) bool {
	return recordsOf(e).has(id)
}

// cmpSortStrings compares string slices as sets.
var cmpSortStrings = cmpopts.SortSlices(func(a, b string) bool { return a < b })

// delsWithSandbox returns "DEL network ifName containerID netns" of every DEL,
// in order.
func (d *fakeDelegates) delsWithSandbox() []string {
	var out []string
	for _, c := range d.calls {
		if c.Op == "DEL" {
			out = append(out, c.Op+" "+c.Network+" "+c.IfName+" "+c.ContainerID+" "+c.NetNS)
		}
	}
	return out
}

// TestGC proves the CNI 1.1 GC over our records and every network: a sandbox not
// in the runtime's valid list and older than gcGracePeriod is torn down, every
// attachment in reverse, in its recorded netns, and its record removed; a valid
// sandbox and a young one are untouched; a corrupt record is kept, its error
// returned, and the others still processed. Then each network, keyed by the
// "name" of its configuration, gets GC with the attachments of the kept records
// and the cached attachments of valid sandboxes (even one whose record cannot be
// read), the cluster network included, and a network known only from the cache
// gets GC with an empty valid list.
func TestGC(t *testing.T) {
	dir := t.TempDir()
	conf := gcConf(t, dir, "valid1/eth0", "broken/eth0")
	del := &fakeDelegates{cached: []podnet.CachedAttachment{
		{Network: "net-a", ContainerID: "valid1", IfName: "net1", Config: []byte(netAConfig)}, // also in its record
		{Network: "net-a", ContainerID: "broken", IfName: "net1", Config: []byte(netAConfig)}, // valid, record unreadable
		{Network: "net-b", ContainerID: "stale", IfName: "net2", Config: []byte(netBConfig)},  // invalid sandbox
		{Network: "orphan", ContainerID: "gone", IfName: "net5", Config: []byte(`{"cniVersion":"1.0.0","name":"orphan","type":"bridge"}`)},
		{Network: "vlan", ContainerID: "broken", IfName: "net3", Config: []byte(`{"cniVersion":"1.0.0","name":"vlan","type":"vlan"}`)},
	}}
	e := newEngine(nil, del, conf)
	saveRecord(t, e, "valid1", time.Hour, gcAttachments)
	saveRecord(t, e, "stale", 2*time.Minute, gcAttachments)
	saveRecord(t, e, "young", 10*time.Second, gcAttachments[:2])
	injected := writeCorrupt(t, e, "broken")

	err := e.GC(t.Context(), gcRequest(t), conf)

	var ce *corruptRecordError
	if !errors.Is(err, injected) || !errors.As(err, &ce) || ce.ContainerID != "broken" {
		t.Errorf("GC error = %v, want the corrupt record's %v", err, injected)
	}
	var coder cnicode.Coder
	if !errors.As(err, &coder) || coder.CNICode() != cnicode.RecordCorrupt {
		t.Errorf("CNI code of %v = %v, want %d", err, coder, cnicode.RecordCorrupt)
	}
	wantDels := []string{
		"DEL ns1/net-b net2 stale /var/run/netns/stale",
		"DEL ns1/net-a net1 stale /var/run/netns/stale",
		"DEL cbr0 eth0 stale /var/run/netns/stale",
	}
	if diff := cmp.Diff(wantDels, del.delsWithSandbox()); diff != "" {
		t.Errorf("DELs (-want +got):\n%s", diff)
	}
	for id, want := range map[string]bool{"valid1": true, "young": true, "broken": true, "stale": false} {
		if got := hasRecord(e, id); got != want {
			t.Errorf("record %s kept = %v, want %v", id, got, want)
		}
	}
	wantValid := map[string][]types.GCAttachment{
		"cbr0":   {{ContainerID: "valid1", IfName: "eth0"}, {ContainerID: "young", IfName: "eth0"}},
		"net-a":  {{ContainerID: "valid1", IfName: "net1"}, {ContainerID: "young", IfName: "net1"}, {ContainerID: "broken", IfName: "net1"}},
		"net-b":  {{ContainerID: "valid1", IfName: "net2"}},
		"orphan": nil,
		"vlan":   {{ContainerID: "broken", IfName: "net3"}},
	}
	if diff := cmp.Diff(wantValid, del.gcValid); diff != "" {
		t.Errorf("valid attachments per network GC (-want +got):\n%s", diff)
	}
	wantConfig := map[string]string{
		"cbr0":   clusterDelegate,
		"net-a":  netAConfig,
		"net-b":  netBConfig,
		"orphan": `{"cniVersion":"1.0.0","name":"orphan","type":"bridge"}`,
		"vlan":   `{"cniVersion":"1.0.0","name":"vlan","type":"vlan"}`,
	}
	gotConfig := map[string]string{}
	for k, v := range del.gcConfig {
		gotConfig[k] = string(v)
	}
	if diff := cmp.Diff(wantConfig, gotConfig); diff != "" {
		t.Errorf("configuration per network GC (-want +got):\n%s", diff)
	}
}

// TestGCSandboxSelection proves which records GC tears down, one sandbox at a
// time: a sandbox is valid when the runtime's list names its container ID (the
// runtime attaches us once per sandbox, and a hot-plug-only record does not know
// the runtime's ifname); the grace period is measured with the engine's clock;
// the legacy
// "cni.dev/attachments" key counts when the current one is absent.
func TestGCSandboxSelection(t *testing.T) {
	tests := []struct {
		name     string
		valid    []string
		legacy   bool
		age      time.Duration
		wantDels bool
	}{
		{name: "valid and old: untouched", valid: []string{"c1/eth0"}, age: time.Hour},
		{name: "invalid and old: torn down", valid: []string{"c2/eth0"}, age: time.Hour, wantDels: true},
		{name: "empty valid list, old: torn down", age: time.Hour, wantDels: true},
		{name: "valid container with another ifname: untouched, the container ID decides", valid: []string{"c1/eth1"}, age: time.Hour},
		{name: "invalid but younger than the grace period: kept", age: 59 * time.Second},
		{name: "invalid and exactly the grace period old: torn down", age: time.Minute, wantDels: true},
		{name: "legacy key names it valid: untouched", valid: []string{"c1/eth0"}, legacy: true, age: time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := gcConf(t, dir, tt.valid...)
			if tt.legacy {
				conf.LegacyValidAttachments, conf.ValidAttachments = conf.ValidAttachments, nil
			}
			del := &fakeDelegates{}
			e := newEngine(nil, del, conf)
			saveRecord(t, e, "c1", tt.age, gcAttachments[:2])
			if err := e.GC(t.Context(), gcRequest(t), conf); err != nil {
				t.Fatalf("GC: %v", err)
			}
			var wantDels []string
			if tt.wantDels {
				wantDels = []string{"DEL ns1/net-a net1 c1 /var/run/netns/c1", "DEL cbr0 eth0 c1 /var/run/netns/c1"}
			}
			if diff := cmp.Diff(wantDels, del.delsWithSandbox()); diff != "" {
				t.Errorf("DELs (-want +got):\n%s", diff)
			}
			if hasRecord(e, "c1") == tt.wantDels {
				t.Errorf("record kept = %v, want %v", !tt.wantDels, !tt.wantDels)
			}
			wantCluster := []types.GCAttachment{{ContainerID: "c1", IfName: "eth0"}}
			if tt.wantDels {
				wantCluster = nil
			}
			if diff := cmp.Diff(wantCluster, del.gcValid["cbr0"]); diff != "" {
				t.Errorf("cluster network's valid attachments (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGCClusterNetworkWithoutRecords proves that the cluster network gets GC even
// when no record and no cached attachment exists, with its configuration and an
// empty valid list, so its plugins free whatever they still hold.
func TestGCClusterNetworkWithoutRecords(t *testing.T) {
	dir := t.TempDir()
	conf := gcConf(t, dir, "c9/eth0")
	del := &fakeDelegates{}
	e := newEngine(standardKube(), del, conf)
	if err := e.GC(t.Context(), gcRequest(t), conf); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if diff := cmp.Diff(map[string][]types.GCAttachment{"cbr0": nil}, del.gcValid); diff != "" {
		t.Errorf("GC calls (-want +got):\n%s", diff)
	}
	if got := string(del.gcConfig["cbr0"]); got != clusterDelegate {
		t.Errorf("cluster network GC config = %s, want %s", got, clusterDelegate)
	}
}

// TestGCFailuresDoNotStopOthers proves that GC reports every failure and still
// does the rest: a stale sandbox whose DEL fails keeps its record (a later GC
// retries it) and counts as valid for its networks' GC; a network whose GC fails
// does not stop the others' GC; the result cache failing to list does not stop
// GC of the networks known from records.
func TestGCFailuresDoNotStopOthers(t *testing.T) {
	boom := errors.New("plugin crashed")
	tests := []struct {
		name       string
		delErr     map[string]error
		gcErr      map[string]error
		cachedErr  error
		wantInErr  []string
		wantKept   bool
		wantGCNets []string
	}{
		{
			name:       "R-7.2b DEL failure keeps the record",
			delErr:     map[string]error{"ns1/net-a": boom},
			wantInErr:  []string{"stale", `"ns1/net-a"`, "plugin crashed"},
			wantKept:   true,
			wantGCNets: []string{"cbr0", "net-a"},
		},
		{
			name:       "a network's GC failure",
			gcErr:      map[string]error{"net-a": boom},
			wantInErr:  []string{`"net-a"`, "plugin crashed"},
			wantGCNets: []string{"cbr0", "net-a"},
		},
		{
			name:       "the result cache does not list",
			cachedErr:  boom,
			wantInErr:  []string{"cached results", "plugin crashed"},
			wantGCNets: []string{"cbr0", "net-a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := gcConf(t, dir, "valid1/eth0")
			del := &fakeDelegates{delErr: tt.delErr, gcErr: tt.gcErr, cachedErr: tt.cachedErr}
			e := newEngine(nil, del, conf)
			saveRecord(t, e, "valid1", time.Hour, gcAttachments[:2])
			saveRecord(t, e, "stale", time.Hour, gcAttachments[:2])
			err := e.GC(t.Context(), gcRequest(t), conf)
			if !errors.Is(err, boom) {
				t.Fatalf("GC error = %v, want it to wrap %v", err, boom)
			}
			for _, s := range tt.wantInErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
			if hasRecord(e, "stale") != tt.wantKept {
				t.Errorf("stale record kept = %v, want %v", hasRecord(e, "stale"), tt.wantKept)
			}
			var gotNets []string
			for n := range del.gcValid {
				gotNets = append(gotNets, n)
			}
			if diff := cmp.Diff(tt.wantGCNets, gotNets, cmpSortStrings); diff != "" {
				t.Errorf("networks GC'd (-want +got):\n%s", diff)
			}
			// Records are listed in name order: stale, then valid1.
			wantA := []types.GCAttachment{{ContainerID: "valid1", IfName: "net1"}}
			if tt.wantKept {
				wantA = append([]types.GCAttachment{{ContainerID: "stale", IfName: "net1"}}, wantA...)
			}
			if diff := cmp.Diff(wantA, del.gcValid["net-a"]); diff != "" {
				t.Errorf("net-a valid attachments (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGCExcludesADDs proves that GC holds the records' lock exclusively while it
// works, from before it lists the records until after it has read the result
// cache, so an ADD, which takes it shared from before its record is written
// until its delegates are done, can never be half made while GC reads the
// records and the result cache: its fresh attachments could not be told from
// stale ones. That the lock excludes across processes is the store's test.
func TestGCExcludesADDs(t *testing.T) {
	dir := t.TempDir()
	conf := gcConf(t, dir, "valid1/eth0")
	del := &fakeDelegates{}
	e := newEngine(nil, del, conf)
	saveRecord(t, e, "valid1", time.Hour, gcAttachments[:2])
	recs := recordsOf(e)
	cachedRead := false
	del.beforeCached = func() {
		cachedRead = true
		if shared, exclusive := recs.held(); shared != 0 || exclusive != 1 {
			t.Errorf("locks held while GC reads the result cache: %d shared, %d exclusive; want 1 exclusive", shared, exclusive)
		}
	}
	recs.trace = nil
	if err := e.GC(t.Context(), gcRequest(t), conf); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if !cachedRead {
		t.Fatal("GC did not read the result cache")
	}
	ops := recs.ops()
	if len(ops) < 3 || ops[0] != "lock exclusive" || ops[len(ops)-1] != "unlock exclusive" || !slices.Contains(ops, "list") {
		t.Errorf("records calls %v, want the exclusive lock taken before the records are listed and released last", ops)
	}
	if shared, exclusive := recs.held(); shared != 0 || exclusive != 0 {
		t.Errorf("locks still held after GC: %d shared, %d exclusive", shared, exclusive)
	}
}
