package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/polynet-cni/polynet/test/testbed"
)

// defaultRoutes lists the pod's default routes as "family gw dev".
func defaultRoutes(t *testing.T, netns *testbed.NetNS) []string {
	t.Helper()
	var out []string
	err := netns.Do(func() error {
		for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			routes, err := netlink.RouteList(nil, fam)
			if err != nil {
				return err
			}
			for _, r := range routes {
				ones := -1
				if r.Dst != nil {
					ones, _ = r.Dst.Mask.Size()
				}
				if r.Dst != nil && ones != 0 {
					continue
				}
				link, err := netlink.LinkByIndex(r.LinkIndex)
				if err != nil {
					return err
				}
				out = append(out, fmt.Sprintf("v%d %s %s", map[int]int{netlink.FAMILY_V4: 4, netlink.FAMILY_V6: 6}[fam], r.Gw, link.Attrs().Name))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestDefaultRoute: R-4.1.2.1.9 with a cluster network that installs IPv4 and IPv6
// default routes, as every real one does (bridge + host-local, dual stack,
// isDefaultGateway). An IPv4 gateway on a secondary takes the IPv4 default route
// and leaves the IPv6 one on eth0 (each family on its own); an empty list keeps
// the secondary's own default route and removes the cluster network's of both
// families. CHECK passes afterwards (the cached results were rewritten), the
// network-status entries tell the gateways (R-5.3.6.4), and DEL cleans up.
func TestDefaultRoute(t *testing.T) {
	modes(t, func(t *testing.T) {
		for _, v := range []string{"0.4.0", "1.0.0", "1.1.0"} {
			t.Run(v, func(t *testing.T) {
				e := newEnv(t)
				v4gw := strings.TrimSuffix(e.subnet, "0/24") + "1"
				v6net := fmt.Sprintf("fd00:%x::", e.idx)
				cluster := map[string]any{
					"cniVersion": v, "name": "cluster-net",
					"plugins": []any{map[string]any{
						"type": "bridge", "bridge": e.bridge, "isDefaultGateway": true,
						"ipam": map[string]any{"type": "host-local", "dataDir": e.dataDir, "ranges": []any{
							[]any{map[string]any{"subnet": e.subnet}},
							[]any{map[string]any{"subnet": v6net + "/64"}},
						}},
					}},
				}
				conf := e.multusConf(v, map[string]any{"delegates": []any{cluster}})
				master := fmt.Sprintf("mvd%d", e.idx)
				addBridge(t, master)
				e.nad("mv", fmt.Sprintf(`{"cniVersion":%q,"type":"macvlan","master":%q,"capabilities":{"ips":true},
				"ipam":{"type":"static","routes":[{"dst":"0.0.0.0/0","gw":"10.202.0.254"}]}}`, v, master), nil)

				_, sb, netns := e.pod("v4gw", map[string]string{"k8s.v1.cni.cncf.io/networks": `[{"name":"mv","ips":["10.202.0.5/24"],"default-route":["10.202.0.1"]}]`})
				e.add(conf, sb)
				want := []string{"v4 10.202.0.1 net1", "v6 " + v6net + "1 eth0"}
				if got := defaultRoutes(t, netns); !slices.Equal(got, want) {
					t.Errorf("default routes %v, want %v", got, want)
				}
				if err := e.rt.Check(e.ctx, conf, sb); err != nil {
					t.Errorf("CHECK after the default route moved: %v", err)
				}
				st := e.networkStatus("v4gw")
				if len(st) != 2 || !slices.Equal(st[1].DefaultRoute, []string{"10.202.0.1"}) || !slices.Equal(st[1].Gateway, []string{"10.202.0.1"}) ||
					!slices.Equal(st[0].Gateway, []string{v6net + "1"}) {
					t.Errorf("network-status %+v: want net1 with default-route/gateway 10.202.0.1 and eth0 with the IPv6 gateway only (not %s)", st, v4gw)
				}
				e.del(conf, sb)

				_, sb2, netns2 := e.pod("keepown", map[string]string{"k8s.v1.cni.cncf.io/networks": `[{"name":"mv","ips":["10.202.0.6/24"],"default-route":[]}]`})
				e.add(conf, sb2)
				if got, want := defaultRoutes(t, netns2), []string{"v4 10.202.0.254 net1"}; !slices.Equal(got, want) {
					t.Errorf("default routes with an empty list %v, want %v", got, want)
				}
				if err := e.rt.Check(e.ctx, conf, sb2); err != nil {
					t.Errorf("CHECK after the default routes were removed: %v", err)
				}
				st = e.networkStatus("keepown")
				if len(st) != 2 || len(st[0].Gateway) != 0 || !slices.Equal(st[1].DefaultRoute, []string{"10.202.0.254"}) {
					t.Errorf("network-status %+v", st)
				}
				e.del(conf, sb2)
			})
		}
	})
}
