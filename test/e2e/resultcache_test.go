package e2e

import (
	"debug/buildinfo"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/polynet-cni/polynet/internal/adapter/delegate"
	"github.com/polynet-cni/polynet/test/recording"
	"github.com/polynet-cni/polynet/test/testbed"
)

// dualStackCluster is a cluster network with a default route of each family:
// a bridge (isDefaultGateway) with host-local IPv4 (the env's subnet) and IPv6
// (v6net, a /64) ranges, then the chained plugins.
func (e *env) dualStackCluster(v, v6net string, chained ...map[string]any) map[string]any {
	plugins := []any{map[string]any{
		"type": "bridge", "bridge": e.bridge, "isDefaultGateway": true,
		"ipam": map[string]any{"type": "host-local", "dataDir": e.dataDir, "ranges": []any{
			[]any{map[string]any{"subnet": e.subnet}},
			[]any{map[string]any{"subnet": v6net}},
		}},
	}}
	for _, p := range chained {
		plugins = append(plugins, p)
	}
	return map[string]any{"cniVersion": v, "name": "cluster-net", "plugins": plugins}
}

// dualStackSecondary is a NAD configuration: a bridge of its own (a gateway
// address of each family on it, no default route in the pod) with host-local
// IPv4 and IPv6 ranges, then the chained plugins (JSON objects). The bridge goes
// when the test ends.
func (e *env) dualStackSecondary(v, name, bridge, v4net, v6net string, chained ...string) string {
	e.t.Cleanup(func() { deleteLink(e.t, bridge) })
	plugins := []string{fmt.Sprintf(`{"type":"bridge","bridge":%q,"isGateway":true,
		"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":%q}],[{"subnet":%q}]]}}`, bridge, e.dataDir, v4net, v6net)}
	plugins = append(plugins, chained...)
	return fmt.Sprintf(`{"cniVersion":%q,"name":%q,"plugins":[%s]}`, v, name, strings.Join(plugins, ","))
}

// prevResultDefaults returns the default routes of the prevResult a recorder
// received, as defaultRoutes lists the pod's: "v4 gw ifname", sorted.
func prevResultDefaults(t *testing.T, r recording.Record) []string {
	t.Helper()
	conf := &types.PluginConf{}
	if err := r.Conf(conf); err != nil {
		t.Fatalf("recorded stdin: %v", err)
	}
	if conf.RawPrevResult == nil {
		t.Fatalf("%s of %s got no prevResult:\n%s", r.Command, r.Env["CNI_IFNAME"], r.Stdin)
	}
	if err := version.ParsePrevResult(conf); err != nil {
		t.Fatalf("prevResult of %s: %v", r.Command, err)
	}
	res, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, rt := range res.Routes {
		if ones, _ := rt.Dst.Mask.Size(); ones != 0 {
			continue
		}
		fam := 6
		if rt.Dst.IP.To4() != nil {
			fam = 4
		}
		out = append(out, fmt.Sprintf("v%d %s %s", fam, rt.GW, r.Env["CNI_IFNAME"]))
	}
	slices.Sort(out)
	return out
}

// onInterface keeps the routes (as defaultRoutes lists them) on ifname.
func onInterface(routes []string, ifname string) []string {
	out := []string{}
	for _, r := range routes {
		if strings.HasSuffix(r, " "+ifname) {
			out = append(out, r)
		}
	}
	return out
}

// requireLibcniPin fails when a binary that runs the engine was linked with
// another libcni than the one whose cache format RewriteDefaultRoutes writes.
func requireLibcniPin(t *testing.T, bin string) {
	t.Helper()
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("build information of %s: %v", bin, err)
	}
	for _, d := range info.Deps {
		if d.Path != "github.com/containernetworking/cni" {
			continue
		}
		if d.Replace != nil {
			d = d.Replace
		}
		if d.Version != delegate.CacheFormatLibcni {
			t.Fatalf("%s links libcni %s, the cache format test was verified against %s: re-verify resultcache.go against libcni's cache code and update this pin",
				bin, d.Version, delegate.CacheFormatLibcni)
		}
		return
	}
	t.Fatalf("%s does not link libcni", bin)
}

// TestResultCacheAfterDefaultRoute proves, with the real bridge plugin in a
// real netns, that the libcni result cache RewriteDefaultRoutes edits is what
// libcni hands the delegates after a default-route change (R-4.1.2.1.9): a
// recorder chained last in both the cluster network and the secondary gets, as
// prevResult on CHECK and on DEL, exactly the default routes the pod has on
// that interface at that moment (the IPv4 default moved to net1; eth0 keeps
// its IPv6 one), and the bridge's own CHECK, which validates prevResult's
// routes and addresses, passes. The binary that runs the engine must link the
// libcni the cache format was verified against.
func TestResultCacheAfterDefaultRoute(t *testing.T) {
	modes(t, func(t *testing.T) {
		for _, v := range []string{"0.4.0", "1.0.0", "1.1.0"} {
			t.Run(v, func(t *testing.T) {
				e := newEnv(t)
				engineBin := "multus"
				if e.mode == "thick" {
					engineBin = "multus-daemon"
				}
				requireLibcniPin(t, testbed.Binary(t, engineBin))

				recorder := map[string]any{"type": "recorder", "recordDir": e.recordDir}
				clusterV6 := fmt.Sprintf("fd30:%x::", e.idx)
				conf := e.multusConf(v, map[string]any{"delegates": []any{e.dualStackCluster(v, clusterV6+"/64", recorder)}})
				secV4, secV6 := fmt.Sprintf("172.29.%d.", e.idx%250), fmt.Sprintf("fd31:%x::", e.idx)
				e.nad("sec", e.dualStackSecondary(v, "sec", fmt.Sprintf("rcb%d", e.idx), secV4+"0/24", secV6+"/64",
					fmt.Sprintf(`{"type":"recorder","recordDir":%q}`, e.recordDir)), nil)
				_, sb, netns := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": fmt.Sprintf(`[{"name":"sec","default-route":[%q]}]`, secV4+"1")})
				e.add(conf, sb)

				pod := defaultRoutes(t, netns)
				if want := []string{"v4 " + secV4 + "1 net1", "v6 " + clusterV6 + "1 eth0"}; !slices.Equal(pod, want) {
					t.Fatalf("default routes %v, want %v", pod, want)
				}
				if err := e.rt.Check(e.ctx, conf, sb); err != nil {
					t.Errorf("CHECK after the default route moved: %v\n%s", err, e.log())
				}
				assertPrevResults(t, e, "CHECK", pod)

				pod = defaultRoutes(t, netns)
				e.del(conf, sb)
				assertPrevResults(t, e, "DEL", pod)
			})
		}
	})
}

// assertPrevResults checks that every recorded run of command, one per
// interface, got as prevResult the default routes the pod has on that
// interface.
func assertPrevResults(t *testing.T, e *env, command string, pod []string) {
	t.Helper()
	runs := e.recordsFor(command)
	var ifnames []string
	for _, r := range runs {
		ifname := r.Env["CNI_IFNAME"]
		ifnames = append(ifnames, ifname)
		if got, want := prevResultDefaults(t, r), onInterface(pod, ifname); !slices.Equal(got, want) {
			t.Errorf("%s of %s got default routes %v as prevResult; the pod has %v there", command, ifname, got, want)
		}
	}
	slices.Sort(ifnames)
	if !slices.Equal(ifnames, []string{"eth0", "net1"}) {
		t.Errorf("%s reached the recorder on %v, want eth0 and net1 once each", command, ifnames)
	}
}
