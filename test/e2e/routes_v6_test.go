package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestDefaultRouteIPv6AndDualStack: R-4.1.2.1.9 with an IPv6 gateway, and with
// a gateway of each family at once, on a dual-stack secondary (the real bridge
// plugin with host-local IPv4 and IPv6 ranges) beside a dual-stack cluster
// network that installs a default route of each family. Read back from the
// pod's netns with netlink: exactly one default route per family, via the
// requested gateway on net1 for each family requested; the cluster network's
// default of that family gone, the other family's kept on eth0. The owner's
// network-status entry tells default-route, eth0's no longer the moved
// gateway; CHECK passes; DEL leaves the pod with only lo, and nothing behind
// on the node (CheckLeaks: links, host-local reservations, cache entries,
// records).
func TestDefaultRouteIPv6AndDualStack(t *testing.T) {
	modes(t, func(t *testing.T) {
		for _, v := range []string{"0.4.0", "1.0.0", "1.1.0"} {
			t.Run(v, func(t *testing.T) {
				e := newEnv(t)
				clusterV4 := strings.TrimSuffix(e.subnet, "0/24") + "1"
				clusterV6 := fmt.Sprintf("fd40:%x::", e.idx)
				conf := e.multusConf(v, map[string]any{"delegates": []any{e.dualStackCluster(v, clusterV6+"/64")}})
				secV4, secV6 := fmt.Sprintf("172.28.%d.", e.idx%250), fmt.Sprintf("fd41:%x::", e.idx)
				e.nad("sec", e.dualStackSecondary(v, "sec", fmt.Sprintf("r6b%d", e.idx), secV4+"0/24", secV6+"/64"), nil)

				cases := []struct {
					pod      string
					gateways []string
					routes   []string // as defaultRoutes lists them
					eth0GW   []string // eth0's network-status gateways
				}{
					{
						pod:      "v6gw",
						gateways: []string{secV6 + "1"},
						routes:   []string{"v4 " + clusterV4 + " eth0", "v6 " + secV6 + "1 net1"},
						eth0GW:   []string{clusterV4},
					},
					{
						pod:      "dual",
						gateways: []string{secV4 + "1", secV6 + "1"},
						routes:   []string{"v4 " + secV4 + "1 net1", "v6 " + secV6 + "1 net1"},
					},
				}
				for _, c := range cases {
					quoted := make([]string, len(c.gateways))
					for i, gw := range c.gateways {
						quoted[i] = fmt.Sprintf("%q", gw)
					}
					_, sb, netns := e.pod(c.pod, map[string]string{"k8s.v1.cni.cncf.io/networks": `[{"name":"sec","default-route":[` + strings.Join(quoted, ",") + `]}]`})
					e.add(conf, sb)
					if got := defaultRoutes(t, netns); !slices.Equal(got, c.routes) {
						t.Errorf("%s: default routes %v, want %v", c.pod, got, c.routes)
					}
					if err := e.rt.Check(e.ctx, conf, sb); err != nil {
						t.Errorf("%s: CHECK after the default routes moved: %v\n%s", c.pod, err, e.log())
					}
					st := e.networkStatus(c.pod)
					if len(st) != 2 || st[1].Interface != "net1" || !slices.Equal(st[1].DefaultRoute, c.gateways) || !slices.Equal(st[0].Gateway, c.eth0GW) {
						t.Errorf("%s: network-status %+v: want net1 with default-route %v and eth0 with gateways %v", c.pod, st, c.gateways, c.eth0GW)
					}
					e.del(conf, sb)
					if got := links(t, netns); len(got) != 1 {
						t.Errorf("%s: links left in the pod after DEL: %v", c.pod, got)
					}
				}
			})
		}
	})
}
