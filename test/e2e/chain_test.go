package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polynet-cni/polynet/test/testbed"
)

// sysctl reads a sysctl inside the pod's network namespace.
func sysctl(t *testing.T, netns *testbed.NetNS, key string) string {
	t.Helper()
	var v string
	err := netns.Do(func() error {
		data, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")))
		v = strings.TrimSpace(string(data))
		return err
	})
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	return v
}

// TestChaining: a conflist cluster network given as a file path gets the plugins of
// the folder named after it appended (libcni's subdirectory loading), and the
// auxiliary chain (auxiliaryCNIChainName) runs the plugins of its folder behind our
// passthru plugin. The real tuning plugin proves both, setting a sysctl on eth0
// from each; the auxiliary chain makes no pod interface and no status entry.
func TestChaining(t *testing.T) {
	modes(t, func(t *testing.T) {
		for _, v := range []string{"0.4.0", "1.0.0", "1.1.0"} {
			t.Run(v, func(t *testing.T) {
				e := newEnv(t)
				netd := filepath.Join(e.confDir, "net.d")
				clusterFile := filepath.Join(netd, "10-cluster.conflist")
				cluster := fmt.Sprintf(`{"cniVersion":%q,"name":"cluster-net","plugins":[{"type":"bridge","bridge":%q,"isGateway":true,
				"ipam":{"type":"host-local","subnet":%q,"dataDir":%q}}]}`, v, e.bridge, e.subnet, e.dataDir)
				e.writeConf("net.d/10-cluster.conflist", cluster)
				e.writeConf("net.d/cluster-net/50-tuning.conf", `{"type":"tuning","sysctl":{"net.ipv4.conf.IFNAME.arp_filter":"1"}}`)
				e.writeConf("net.d/vendor-chain/50-tuning.conf", `{"type":"tuning","sysctl":{"net.ipv4.conf.eth0.arp_ignore":"2"}}`)
				conf := e.multusConf(v, map[string]any{"delegates": nil, "clusterNetwork": clusterFile, "auxiliaryCNIChainName": "vendor-chain"})

				_, sb, netns := e.pod("pod-1", nil)
				e.add(conf, sb)
				if got := sysctl(t, netns, "net.ipv4.conf.eth0.arp_filter"); got != "1" {
					t.Errorf("arp_filter on eth0 = %s: the subdirectory's tuning plugin did not run", got)
				}
				if got := sysctl(t, netns, "net.ipv4.conf.eth0.arp_ignore"); got != "2" {
					t.Errorf("arp_ignore on eth0 = %s: the auxiliary chain's tuning plugin did not run", got)
				}
				if st := e.networkStatus("pod-1"); len(st) != 1 || st[0].Name != "cluster-net" {
					t.Errorf("network-status %+v: want the cluster network only", st)
				}
				if got := links(t, netns); len(got) != 2 {
					t.Errorf("pod links %v: the auxiliary chain must not make an interface", got)
				}
				if err := e.rt.Check(e.ctx, conf, sb); err != nil {
					t.Errorf("CHECK: %v", err)
				}
				e.del(conf, sb)

				// loadOnlyInlinedPlugins turns the subdirectory off.
				inlined := strings.Replace(cluster, `"name":"cluster-net",`, `"name":"cluster-net","loadOnlyInlinedPlugins":true,`, 1)
				e.writeConf("net.d/10-cluster.conflist", inlined)
				_, sb2, netns2 := e.pod("pod-2", nil)
				e.add(conf, sb2)
				if got := sysctl(t, netns2, "net.ipv4.conf.eth0.arp_filter"); got != "0" {
					t.Errorf("arp_filter = %s with loadOnlyInlinedPlugins", got)
				}
				e.del(conf, sb2)
			})
		}
	})
}
