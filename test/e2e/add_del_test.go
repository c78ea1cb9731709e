package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"

	"github.com/polynet-cni/polynet/test/testbed"
)

func asCNIError(err error, target **types.Error) bool { return errors.As(err, target) }

// TestAddDelRealPlugins attaches a pod to the cluster network (bridge +
// host-local), a macvlan network on a bridge master with static IPAM and the
// pod's requested ips, and a bridge network chained with tuning setting the
// requested mac; checks the interfaces inside the pod's netns, the result, the
// network-status annotation and the events; then DELs and checks nothing leaked.
// For every CNI version (R-6.2, R-4.1.2.1.3, R-4.1.2.1.4, R-5.2, R-5.3.*).
func TestAddDelRealPlugins(t *testing.T) {
	modes(t, func(t *testing.T) {
		for _, v := range cniVersions {
			t.Run(v, func(t *testing.T) {
				e := newEnv(t)
				master := fmt.Sprintf("mvm%d", e.idx)
				addBridge(t, master)
				second := fmt.Sprintf("sbr%d", e.idx)
				t.Cleanup(func() { deleteLink(t, second) })
				e.nad("macvlan-static", fmt.Sprintf(`{"cniVersion":%q,"type":"macvlan","master":%q,"mode":"bridge",
				"capabilities":{"ips":true},"ipam":{"type":"static"}}`, v, master), nil)
				e.nad("bridge-mac", fmt.Sprintf(`{"cniVersion":%q,"name":"bridge-mac","plugins":[
				{"type":"bridge","bridge":%q,"ipam":{"type":"host-local","subnet":"192.168.%d.0/24","dataDir":%q}},
				{"type":"tuning","capabilities":{"mac":true}}]}`, v, second, e.idx%250, e.dataDir), nil)
				_, sb, netns := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": `[
				{"name":"macvlan-static","ips":["10.200.0.7/24"]},
				{"name":"bridge-mac","interface":"data0","mac":"c2:11:22:33:44:55"}]`})

				res, err := e.rt.Add(e.ctx, e.multusConf(v, nil), sb)
				if err != nil {
					t.Fatalf("ADD: %v\nlog:\n%s", err, readFile(e.logFile))
				}
				if res.Version() != v {
					t.Errorf("result version %s, want %s", res.Version(), v)
				}
				cur, err := current.NewResultFromResult(res)
				if err != nil || len(cur.IPs) == 0 || !strings.HasPrefix(cur.IPs[0].Address.IP.String(), strings.TrimSuffix(e.subnet, "0/24")) {
					t.Errorf("result is not the cluster network's: %v (%v)", res, err)
				}
				got := links(t, netns)
				if len(got["eth0"]) != 1 || len(got["net1"]) != 1 || got["net1"][0] != "10.200.0.7/24" {
					t.Errorf("pod links %v: want eth0 with an address, net1 with 10.200.0.7/24", got)
				}
				if mac := linkMAC(t, netns, "data0"); mac != "c2:11:22:33:44:55" {
					t.Errorf("data0 has MAC %q, want the requested c2:11:22:33:44:55", mac)
				}
				status := e.networkStatus("pod-1")
				if len(status) != 3 || status[0].Name != "cluster-net" || !status[0].Default ||
					status[1].Name != e.namespace+"/macvlan-static" || status[1].Interface != "net1" || status[1].Default ||
					status[2].Name != e.namespace+"/bridge-mac" || status[2].Interface != "data0" {
					t.Errorf("network-status %+v", status)
				}
				if len(status) == 3 && (len(status[1].IPs) != 1 || status[1].IPs[0] != "10.200.0.7") {
					t.Errorf("network-status of net1 has IPs %v, want [10.200.0.7]", status[1].IPs)
				}
				evs := e.eventsWith("pod-1", "AddedInterface: Add data0")
				for _, want := range []string{"AddedInterface: Add eth0", "AddedInterface: Add net1 [10.200.0.7/24] from " + e.namespace + "/macvlan-static", "AddedInterface: Add data0"} {
					if !strings.Contains(evs, want) {
						t.Errorf("events lack %q:\n%s", want, evs)
					}
				}

				if err := e.rt.Del(e.ctx, e.multusConf(v, nil), sb); err != nil {
					t.Fatalf("DEL: %v\nlog:\n%s", err, readFile(e.logFile))
				}
				if got := links(t, netns); len(got) != 1 {
					t.Errorf("pod links after DEL %v, want only lo", got)
				}
			})
		}
	})
}

func addBridge(t *testing.T, name string) {
	t.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("adding bridge %s: %v", name, err)
	}
	t.Cleanup(func() { deleteLink(t, name) })
	if err := netlink.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
}

func linkMAC(t *testing.T, netns *testbed.NetNS, name string) string {
	t.Helper()
	var mac string
	err := netns.Do(func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		mac = l.Attrs().HardwareAddr.String()
		return nil
	})
	if err != nil {
		t.Errorf("link %s: %v", name, err)
	}
	return mac
}
