package engine

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/engine/attach"
	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
	"github.com/polynet-cni/polynet/internal/selection"
)

// routeSandbox is the sandbox of the default-route tests.
var routeSandbox = podnet.Sandbox{ContainerID: "c1", NetNS: testNetNS}

// routePlan is a pod with the cluster network on eth0 and two selected networks
// on net1 and net2; the selection at index owner (1 or 2) carries
// default-route with the gateways given (an empty, non-nil list is the empty
// key), and none does when owner is 0.
func routePlan(owner int, gateways []string) []attach.Planned {
	planned := []attach.Planned{
		{Attachment: podnet.Attachment{Network: "cbr0", IfName: "eth0", Default: true}},
		{Attachment: podnet.Attachment{Network: "ns1/net-a", IfName: "net1"}, Selection: &selection.Element{Namespace: "ns1", Name: "net-a"}},
		{Attachment: podnet.Attachment{Network: "ns1/net-b", IfName: "net2"}, Selection: &selection.Element{Namespace: "ns1", Name: "net-b"}},
	}
	if owner > 0 {
		sel := planned[owner].Selection
		sel.HasDefaultRoute = true
		sel.DefaultRoute = []net.IP{}
		for _, gw := range gateways {
			sel.DefaultRoute = append(sel.DefaultRoute, net.ParseIP(gw))
		}
	}
	return planned
}

// withNetNS prefixes each fake route call with the sandbox's netns.
func withNetNS(calls ...string) []string {
	out := make([]string, 0, len(calls))
	for _, c := range calls {
		out = append(out, testNetNS+" "+c)
	}
	return out
}

// TestApplyDefaultRoute proves R-4.1.2.1.9 as the engine carries it out: for each
// family of the gateways given, every attachment loses its default route of that
// family (the owner too), the other family is left alone, the gateways are added
// on the owner's interface, and each attachment's cached result is rewritten to
// match; an empty list removes the others' defaults of both families and leaves
// the owner untouched; no selection with default-route changes nothing.
func TestApplyDefaultRoute(t *testing.T) {
	tests := []struct {
		name         string
		owner        int
		gateways     []string
		wantCalls    []string
		wantRewrites []string
		wantChange   routeChange
	}{
		{
			name:     "R-4.1.2.1.9 IPv4 gateway removes only IPv4 defaults",
			owner:    1,
			gateways: []string{"10.1.1.1"},
			wantCalls: withNetNS(
				"DEL eth0 4",
				"DEL net1 4",
				"DEL net2 4", "ADD net1 10.1.1.1",
			),
			wantRewrites: []string{"eth0 [4] []", "net1 [4] [10.1.1.1]", "net2 [4] []"},
			wantChange:   routeChange{owner: 1, families: []int{4}, gateways: []net.IP{net.ParseIP("10.1.1.1")}},
		},
		{
			name:     "R-4.1.2.1.9 IPv6 gateway removes only IPv6 defaults",
			owner:    2,
			gateways: []string{"fd01::1"},
			wantCalls: withNetNS(
				"DEL eth0 6",
				"DEL net1 6",
				"DEL net2 6", "ADD net2 fd01::1",
			),
			wantRewrites: []string{"eth0 [6] []", "net1 [6] []", "net2 [6] [fd01::1]"},
			wantChange:   routeChange{owner: 2, families: []int{6}, gateways: []net.IP{net.ParseIP("fd01::1")}},
		},
		{
			name:     "R-4.1.2.1.9 IPv4 and IPv6 gateways remove both families, add both in order",
			owner:    1,
			gateways: []string{"10.1.1.1", "fd01::1"},
			wantCalls: withNetNS(
				"DEL eth0 4", "DEL eth0 6",
				"DEL net1 4", "DEL net1 6",
				"DEL net2 4", "DEL net2 6", "ADD net1 10.1.1.1", "ADD net1 fd01::1",
			),
			wantRewrites: []string{"eth0 [4 6] []", "net1 [4 6] [10.1.1.1 fd01::1]", "net2 [4 6] []"},
			wantChange:   routeChange{owner: 1, families: []int{4, 6}, gateways: []net.IP{net.ParseIP("10.1.1.1"), net.ParseIP("fd01::1")}},
		},
		{
			name:     "R-4.1.2.1.9 two IPv4 gateways name the family once",
			owner:    1,
			gateways: []string{"10.1.1.1", "10.1.1.2"},
			wantCalls: withNetNS(
				"DEL eth0 4",
				"DEL net1 4",
				"DEL net2 4", "ADD net1 10.1.1.1", "ADD net1 10.1.1.2",
			),
			wantRewrites: []string{"eth0 [4] []", "net1 [4] [10.1.1.1 10.1.1.2]", "net2 [4] []"},
			wantChange:   routeChange{owner: 1, families: []int{4}, gateways: []net.IP{net.ParseIP("10.1.1.1"), net.ParseIP("10.1.1.2")}},
		},
		{
			name:     "R-4.1.2.1.9 empty list: others lose both families, owner untouched",
			owner:    2,
			gateways: []string{},
			wantCalls: withNetNS(
				"DEL eth0 4", "DEL eth0 6",
				"DEL net1 4", "DEL net1 6",
			),
			wantRewrites: []string{"eth0 [4 6] []", "net1 [4 6] []"},
			wantChange:   routeChange{owner: 2, families: []int{4, 6}, gateways: []net.IP{}},
		},
		{
			name:       "no selection with default-route changes nothing",
			owner:      0,
			wantChange: routeChange{owner: -1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			del := &fakeDelegates{}
			routes := &fakeRoutes{}
			e := newEngine(nil, del, defaultConf(t, dir, ""))
			e.Routes = routes
			ch, err := e.applyDefaultRoute(routeSandbox, routePlan(tt.owner, tt.gateways))
			if err != nil {
				t.Fatalf("applyDefaultRoute: %v", err)
			}
			if diff := cmp.Diff(tt.wantCalls, routes.calls); diff != "" {
				t.Errorf("route changes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRewrites, del.rewrites); diff != "" {
				t.Errorf("cached result rewrites (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantChange, ch, cmp.AllowUnexported(routeChange{})); diff != "" {
				t.Errorf("routeChange (-want +got):\n%s", diff)
			}
		})
	}
}

// TestApplyDefaultRouteNoRoutes proves that an engine without a Routes adapter
// serves pods that make no default-route request, and fails a request rather
// than ignore it.
func TestApplyDefaultRouteNoRoutes(t *testing.T) {
	tests := []struct {
		name    string
		owner   int
		wantErr bool
	}{
		{name: "no request needs no Routes", owner: 0},
		{name: "R-4.1.2.1.9 request without Routes is an error", owner: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			del := &fakeDelegates{}
			e := newEngine(nil, del, defaultConf(t, t.TempDir(), ""))
			_, err := e.applyDefaultRoute(routeSandbox, routePlan(tt.owner, []string{"10.1.1.1"}))
			if (err != nil) != tt.wantErr {
				t.Fatalf("applyDefaultRoute error = %v, want error %v", err, tt.wantErr)
			}
			if len(del.rewrites) != 0 {
				t.Errorf("cached results rewritten: %v", del.rewrites)
			}
		})
	}
}

// TestApplyDefaultRouteStopsAtFailure proves that the first failing change
// (removing a route, adding the gateway, rewriting a cached result) stops the
// work and is returned, naming the interface.
func TestApplyDefaultRouteStopsAtFailure(t *testing.T) {
	boom := errors.New("netlink says no")
	tests := []struct {
		name       string
		fail       string
		rewriteErr bool
		wantCalls  []string
		wantInErr  string
	}{
		{
			name:      "removing a default route",
			fail:      "DEL net2 4",
			wantCalls: withNetNS("DEL eth0 4", "DEL net1 4", "DEL net2 4"),
			wantInErr: "net2",
		},
		{
			name:      "adding the gateway",
			fail:      "ADD net1 10.1.1.1",
			wantCalls: withNetNS("DEL eth0 4", "DEL net1 4", "DEL net2 4", "ADD net1 10.1.1.1"),
			wantInErr: "netlink says no",
		},
		{
			name:       "rewriting the cached result",
			rewriteErr: true,
			wantCalls:  withNetNS("DEL eth0 4", "DEL net1 4", "DEL net2 4", "ADD net1 10.1.1.1"),
			wantInErr:  "eth0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			del := &fakeDelegates{}
			if tt.rewriteErr {
				del.rewriteErr = boom
			}
			routes := &fakeRoutes{fail: map[string]error{tt.fail: boom}}
			e := newEngine(nil, del, defaultConf(t, t.TempDir(), ""))
			e.Routes = routes
			_, err := e.applyDefaultRoute(routeSandbox, routePlan(1, []string{"10.1.1.1"}))
			if !errors.Is(err, boom) {
				t.Fatalf("applyDefaultRoute error = %v, want it to wrap %v", err, boom)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not mention %s", err, tt.wantInErr)
			}
			if diff := cmp.Diff(tt.wantCalls, routes.calls); diff != "" {
				t.Errorf("route changes (-want +got):\n%s", diff)
			}
		})
	}
}

// defaultRoutePod is the test pod selecting net-a with the default-route key
// given (a JSON array), then net-b.
func defaultRoutePod(defaultRoute string) *fakeKube {
	k := standardKube()
	k.addPod(testPod(`[{"name":"net-a","default-route":` + defaultRoute + `},{"name":"net-b"}]`))
	return k
}

// TestAddDefaultRouteFailureRollsBack proves R-7.2a for the default-route step:
// when it fails (no Routes adapter, a route change or a cache rewrite failing),
// ADD fails with an *AttachError naming the owner's network and interface, every
// attachment gets a DEL in reverse, and the record is removed.
func TestAddDefaultRouteFailureRollsBack(t *testing.T) {
	boom := errors.New("netlink says no")
	tests := []struct {
		name       string
		routes     *fakeRoutes
		rewriteErr error
	}{
		{name: "R-4.1.2.1.9 no Routes adapter"},
		{name: "R-4.1.2.1.9 removing a route fails", routes: &fakeRoutes{fail: map[string]error{"DEL eth0 4": boom}}},
		{name: "R-4.1.2.1.9 adding the gateway fails", routes: &fakeRoutes{fail: map[string]error{"ADD net1 10.1.1.1": boom}}},
		{name: "R-4.1.2.1.9 rewriting a cached result fails", routes: &fakeRoutes{}, rewriteErr: boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := defaultConf(t, dir, "")
			kube := defaultRoutePod(`["10.1.1.1"]`)
			del := &fakeDelegates{rewriteErr: tt.rewriteErr}
			e := newEngine(kube, del, conf)
			if tt.routes != nil {
				e.Routes = tt.routes
			}
			res, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf)
			if res != nil {
				t.Errorf("a failed ADD returned a result: %v", res)
			}
			var ae *AttachError
			if !errors.As(err, &ae) {
				t.Fatalf("Add error = %v, want *AttachError", err)
			}
			if ae.Network != "ns1/net-a" || ae.IfName != "net1" || ae.Op != "setting the default route of" {
				t.Errorf("AttachError network %q interface %q op %q, want ns1/net-a net1 %q", ae.Network, ae.IfName, ae.Op, "setting the default route of")
			}
			if tt.routes != nil && !errors.Is(err, boom) {
				t.Errorf("error %v does not wrap the adapter's error", err)
			}
			want := append(append([]string{}, standardOps...), reverseDels...)
			if diff := cmp.Diff(want, del.ops()); diff != "" {
				t.Errorf("delegate calls (-want +got):\n%s", diff)
			}
			if _, err := e.Records.Load("c1"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("record after the rollback: Load error = %v, want not exist", err)
			}
			if got := kube.reasons(); len(got) == 0 || got[len(got)-1] != EventWarning+"/"+ReasonAttachFailed {
				t.Errorf("events %v, want a final Warning/%s", got, ReasonAttachFailed)
			}
			if len(kube.patches) != 0 {
				t.Errorf("a failed ADD wrote network-status: %v", kube.patches)
			}
		})
	}
}

// routeResult is a 1.0.0 result on ifName with default routes via the gateways.
func routeResult(ifName string, gateways ...string) *current.Result {
	zero := 0
	res := &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{{Name: ifName, Sandbox: testNetNS}},
	}
	for i, gw := range gateways {
		ip := net.ParseIP(gw)
		addr := net.IPNet{IP: net.IPv4(10, 9, byte(i), 5), Mask: net.CIDRMask(24, 32)}
		dst := net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
		if ip.To4() == nil {
			addr = net.IPNet{IP: net.ParseIP("fd09::5"), Mask: net.CIDRMask(64, 128)}
			dst = net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
		}
		res.IPs = append(res.IPs, &current.IPConfig{Interface: &zero, Address: addr, Gateway: ip})
		res.Routes = append(res.Routes, &types.Route{Dst: dst, GW: ip})
	}
	return res
}

// TestAddDefaultRouteNetworkStatus proves what ADD reports after a default-route
// request (R-5.3.6.4): the owner's "default-route" and "gateway" are the
// gateways it was given, and other attachments lose the gateways of the families
// whose default routes went, keeping the others'.
func TestAddDefaultRouteNetworkStatus(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	kube := defaultRoutePod(`["10.1.1.1"]`)
	del := &fakeDelegates{results: map[string]types.Result{
		"cbr0":      routeResult("eth0", "10.0.0.1", "fd00::1"),
		"ns1/net-a": routeResult("net1", "10.8.0.1"),
		"ns1/net-b": routeResult("net2", "10.7.0.1"),
	}}
	e := newEngine(kube, del, conf)
	e.Routes = &fakeRoutes{}
	if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if len(kube.patches) != 1 {
		t.Fatalf("network-status patches: %d, want 1", len(kube.patches))
	}
	var entries []netstatus.Entry
	if err := json.Unmarshal([]byte(kube.patches[0].Value), &entries); err != nil {
		t.Fatalf("network-status %s: %v", kube.patches[0].Value, err)
	}
	type gw struct {
		Name, Interface       string
		Gateway, DefaultRoute []string
	}
	var got []gw
	for _, en := range entries {
		got = append(got, gw{en.Name, en.Interface, en.Gateway, en.DefaultRoute})
	}
	want := []gw{
		{Name: "cbr0", Interface: "eth0", Gateway: []string{"fd00::1"}},
		{Name: "ns1/net-a", Interface: "net1", Gateway: []string{"10.1.1.1"}, DefaultRoute: []string{"10.1.1.1"}},
		{Name: "ns1/net-b", Interface: "net2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("network-status gateways (-want +got):\n%s", diff)
	}
}

// TestRouteChangeAdjust proves how network-status entries tell the routes the pod
// has after a default-route request (R-5.3.6.4): nothing changes without one;
// the owner reports the gateways it was given as both "gateway" and
// "default-route", or with an empty list its own gateways as "default-route";
// another attachment loses the gateways of the families removed and keeps the
// rest (a value that is not an IP is kept).
func TestRouteChangeAdjust(t *testing.T) {
	v4 := net.ParseIP("10.1.1.1")
	v6 := net.ParseIP("fd01::1")
	entry := func(gws ...string) netstatus.Entry {
		return netstatus.Entry{Name: "n", Interface: "net1", Gateway: gws}
	}
	tests := []struct {
		name  string
		ch    routeChange
		i     int
		entry netstatus.Entry
		want  netstatus.Entry
	}{
		{
			name:  "no request leaves the entry alone",
			ch:    routeChange{owner: -1},
			entry: entry("10.0.0.1", "fd00::1"),
			want:  entry("10.0.0.1", "fd00::1"),
		},
		{
			name:  "R-5.3.6.4 owner reports the gateways given",
			ch:    routeChange{owner: 1, families: []int{4, 6}, gateways: []net.IP{v4, v6}},
			i:     1,
			entry: entry("10.8.0.1"),
			want:  netstatus.Entry{Name: "n", Interface: "net1", Gateway: []string{"10.1.1.1", "fd01::1"}, DefaultRoute: []string{"10.1.1.1", "fd01::1"}},
		},
		{
			name:  "R-5.3.6.4 owner with an empty list reports its own gateways",
			ch:    routeChange{owner: 1, families: []int{4, 6}, gateways: []net.IP{}},
			i:     1,
			entry: entry("10.8.0.1", "fd08::1"),
			want:  netstatus.Entry{Name: "n", Interface: "net1", Gateway: []string{"10.8.0.1", "fd08::1"}, DefaultRoute: []string{"10.8.0.1", "fd08::1"}},
		},
		{
			name:  "R-5.3.6.4 owner with an empty list and no gateway reports none",
			ch:    routeChange{owner: 1, families: []int{4, 6}, gateways: []net.IP{}},
			i:     1,
			entry: entry(),
			want:  entry(),
		},
		{
			name:  "R-4.1.2.1.9 other attachment loses the IPv4 gateway only",
			ch:    routeChange{owner: 1, families: []int{4}, gateways: []net.IP{v4}},
			i:     0,
			entry: entry("10.0.0.1", "fd00::1"),
			want:  entry("fd00::1"),
		},
		{
			name:  "R-4.1.2.1.9 other attachment loses both families, none left is nil",
			ch:    routeChange{owner: 2, families: []int{4, 6}, gateways: []net.IP{}},
			i:     0,
			entry: entry("10.0.0.1", "fd00::1"),
			want:  entry(),
		},
		{
			name:  "a gateway that is not an IP is kept",
			ch:    routeChange{owner: 1, families: []int{4, 6}, gateways: []net.IP{v4}},
			i:     2,
			entry: entry("not-an-ip", "10.0.0.1"),
			want:  entry("not-an-ip"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.entry
			in.Gateway = append([]string(nil), tt.entry.Gateway...)
			got := tt.ch.adjust(tt.i, in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("adjust (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRouteChangeAdjustOwnerKeepsOtherFamily proves that the owner given an IPv4
// gateway only still reports its own IPv6 gateway in "gateway": applyDefaultRoute
// leaves the owner's IPv6 default route in place (a family not given is left
// alone), and the entry must tell the routes the pod has.
func TestRouteChangeAdjustOwnerKeepsOtherFamily(t *testing.T) {
	ch := routeChange{owner: 1, families: []int{4}, gateways: []net.IP{net.ParseIP("10.1.1.1")}}
	got := ch.adjust(1, netstatus.Entry{Name: "n", Interface: "net1", Gateway: []string{"10.8.0.1", "fd08::1"}})
	want := netstatus.Entry{Name: "n", Interface: "net1", Gateway: []string{"10.1.1.1", "fd08::1"}, DefaultRoute: []string{"10.1.1.1"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the owner's other family's gateway was dropped (-want +got):\n%s", diff)
	}
}
