// Package smoke proves the test bed: a real control plane, real network namespaces
// and the real reference CNI plugins, invoked as a container runtime invokes them,
// with nothing left behind.
package smoke

import (
	"fmt"
	"net"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/vishvananda/netlink"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/polynet-cni/polynet/test/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }

var cniVersions = []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// TestBridgeHostLocalThroughControlPlane creates a namespace, a NAD and a pod on the
// real apiserver, reads the NAD back, runs its bridge + host-local config into a
// pod netns through libcni, checks the address inside the netns with netlink, tears
// it down, and checks that nothing leaked: for every CNI version.
func TestBridgeHostLocalThroughControlPlane(t *testing.T) {
	bed := testbed.Require(t)
	cp := testbed.SharedControlPlane(t)
	kc, nc := cp.AdminClients(t)

	for i, v := range cniVersions {
		t.Run(v, func(t *testing.T) {
			ctx := testbed.Context(t)
			dataDir, cacheDir := t.TempDir(), t.TempDir()
			testbed.CheckLeaks(t, testbed.LeakOptions{Dirs: []string{dataDir, cacheDir}})

			namespace := "smoke-" + strings.ReplaceAll(v, ".", "-")
			bridge := fmt.Sprintf("smk%d", i)
			subnet := fmt.Sprintf("10.99.%d.0/24", i)
			conf := fmt.Sprintf(`{"cniVersion":%q,"name":"smoke-net","plugins":[{"type":"bridge","bridge":%q,
				"isGateway":true,"ipam":{"type":"host-local","subnet":%q,"dataDir":%q}}]}`, v, bridge, subnet, dataDir)

			testbed.CreateNamespace(ctx, t, kc, namespace)
			testbed.CreateNAD(ctx, t, nc, namespace, "smoke-net", conf, nil)
			pod := testbed.CreatePod(ctx, t, kc, namespace, "pod-1", nil)
			got, err := nc.K8sCniCncfIoV1().NetworkAttachmentDefinitions(namespace).Get(ctx, "smoke-net", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("reading NAD back: %v", err)
			}

			netns := testbed.NewNetNS(t)
			t.Cleanup(func() { deleteLink(t, bridge) })
			rt := testbed.NewRuntime([]string{bed.CNIPluginDir()}, cacheDir)
			sb := testbed.Sandbox{
				Pod:         testbed.Pod{Namespace: namespace, Name: pod.Name, UID: string(pod.UID)},
				ContainerID: "smoke-" + v,
				NetNS:       netns.Path,
			}
			res, err := rt.Add(ctx, []byte(got.Spec.Config), sb)
			if err != nil {
				t.Fatalf("ADD: %v", err)
			}
			cur, err := current.NewResultFromResult(res)
			if err != nil {
				t.Fatalf("converting the result: %v", err)
			}
			if len(cur.IPs) != 1 {
				t.Fatalf("result has %d IPs, want 1: %v", len(cur.IPs), cur)
			}
			want := cur.IPs[0].Address
			if !strings.HasPrefix(want.IP.String(), fmt.Sprintf("10.99.%d.", i)) {
				t.Errorf("address %s is not from %s", want.String(), subnet)
			}
			if addrs := podAddrs(t, netns, "eth0"); !containsAddr(addrs, want) {
				t.Errorf("eth0 in the pod netns has %v, want %s", addrs, want.String())
			}
			if ok, _ := version.GreaterThanOrEqualTo(v, "0.4.0"); ok { // CHECK exists since 0.4.0
				if err := rt.Check(ctx, []byte(got.Spec.Config), sb); err != nil {
					t.Errorf("CHECK: %v", err)
				}
			}
			if err := rt.Del(ctx, []byte(got.Spec.Config), sb); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			if addrs := podAddrs(t, netns, "eth0"); addrs != nil {
				t.Errorf("eth0 still in the pod netns after DEL, with %v", addrs)
			}
		})
	}
}

func podAddrs(t *testing.T, netns *testbed.NetNS, ifname string) []netlink.Addr {
	t.Helper()
	var addrs []netlink.Addr
	err := netns.Do(func() error {
		link, err := netlink.LinkByName(ifname)
		if err != nil {
			return nil // no such link: no addresses
		}
		addrs, err = netlink.AddrList(link, netlink.FAMILY_V4)
		return err
	})
	if err != nil {
		t.Fatalf("listing addresses in %s: %v", netns.Name, err)
	}
	return addrs
}

func containsAddr(addrs []netlink.Addr, want net.IPNet) bool {
	for _, a := range addrs {
		if a.IPNet.String() == want.String() {
			return true
		}
	}
	return false
}

// deleteLink removes a link of the node namespace, such as the bridge that the
// bridge plugin creates and, by design, leaves behind on DEL.
func deleteLink(t *testing.T, name string) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return
	}
	if err := netlink.LinkDel(link); err != nil {
		t.Errorf("deleting %s: %v", name, err)
	}
}
