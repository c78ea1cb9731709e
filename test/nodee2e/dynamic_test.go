package nodee2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
)

// TestDynamicNetworks: the thick DaemonSet with dynamicNetworks turned on in
// its ConfigMap, as an operator does. A Running pod gains a bridge network,
// then a macvlan network, then loses the first, by changes of its networks
// annotation alone; at each step the pod's interfaces (`ip` inside the pod)
// and its network-status agree, the other interface keeping its name. Deleting
// the pod afterwards leaves nothing on the node. It logs how long each change
// took to show in the pod.
func TestDynamicNetworks(t *testing.T) {
	c := startCluster(t, "thick")
	c.setDaemonConfig(map[string]any{"dynamicNetworks": true})
	c.nads()
	c.pod("hot", "")
	c.waitRunning(3*time.Minute, "hot")
	c.awaitInterfaces("hot", "eth0")

	steps := []struct {
		networks string
		want     []string
	}{
		{`[{"name":"blue"}]`, []string{"eth0", "net1"}},
		{`[{"name":"blue"},{"name":"red","ips":["192.168.60.30/24"]}]`, []string{"eth0", "net1", "net2"}},
		{`[{"name":"red","ips":["192.168.60.30/24"]}]`, []string{"eth0", "net2"}},
	}
	for _, s := range steps {
		start := time.Now()
		c.setNetworks("hot", s.networks)
		c.awaitInterfaces("hot", s.want...)
		t.Logf("%s: %v in the pod and its network-status within %s", s.networks, s.want, time.Since(start).Round(10*time.Millisecond))
	}
	if addrs := c.podAddrs("hot"); addrs["net2"] != "192.168.60.30" {
		t.Errorf("net2 has %q, want the static 192.168.60.30", addrs["net2"])
	}
	// The daemon's own account of each change: how long it took from its
	// start (the pod's change seen) to the status written.
	for _, line := range strings.Split(c.kubectl("-n", "kube-system", "logs", "ds/kube-multus-ds"), "\n") {
		if strings.Contains(line, "reconciled the pod's networks") {
			_, took, _ := strings.Cut(line, "took=")
			_, added, _ := strings.Cut(line, "added=")
			t.Logf("daemon: added=%s took=%s", strings.Fields(added + " ")[0], took)
		}
	}

	c.deletePods(time.Minute, "hot")
	c.eventually(3*time.Minute, "nothing left on the node", func() error {
		if l := leftovers(); len(l) > 0 {
			return fmt.Errorf("left: %v", l)
		}
		return nil
	})
}

// setDaemonConfig sets keys of the DaemonSet's daemon-config.json in its
// ConfigMap and restarts the DaemonSet, as an operator changes it.
func (c *cluster) setDaemonConfig(keys map[string]any) {
	c.t.Helper()
	cms := c.kc.CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(c.ctx, "multus-daemon-config", metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	var conf map[string]any
	if err := json.Unmarshal([]byte(cm.Data["daemon-config.json"]), &conf); err != nil {
		c.t.Fatalf("daemon-config.json: %v", err)
	}
	for k, v := range keys {
		conf[k] = v
	}
	data, _ := json.Marshal(conf)
	cm.Data["daemon-config.json"] = string(data)
	if _, err := cms.Update(c.ctx, cm, metav1.UpdateOptions{}); err != nil {
		c.t.Fatal(err)
	}
	c.kubectl("-n", "kube-system", "rollout", "restart", "ds/kube-multus-ds")
	c.kubectl("-n", "kube-system", "rollout", "status", "ds/kube-multus-ds", "--timeout=4m")
}

// setNetworks sets a pod's networks annotation.
func (c *cluster) setNetworks(name, value string) {
	c.t.Helper()
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{"k8s.v1.cni.cncf.io/networks": value}}})
	if _, err := c.kc.CoreV1().Pods("default").Patch(c.ctx, name, ktypes.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// awaitInterfaces waits until the pod's interfaces other than lo, as `ip` in
// the pod lists them, are want, and its network-status names exactly those,
// with the addresses the pod has.
func (c *cluster) awaitInterfaces(name string, want ...string) {
	c.t.Helper()
	want = slices.Sorted(slices.Values(want))
	c.eventually(2*time.Minute, fmt.Sprintf("pod %s with interfaces %v", name, want), func() error {
		var links []string
		for _, line := range strings.Split(c.kubectl("exec", name, "--", "ip", "-o", "link"), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			link, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if link != "lo" {
				links = append(links, link)
			}
		}
		slices.Sort(links)
		if !slices.Equal(links, want) {
			return fmt.Errorf("the pod has %v", links)
		}
		addrs := c.podAddrs(name)
		var status []string
		for _, e := range c.networkStatus(name) {
			status = append(status, e.Interface)
			if len(e.IPs) != 1 || addrs[e.Interface] != e.IPs[0] {
				return fmt.Errorf("network-status says %s has %v, the pod has %q", e.Interface, e.IPs, addrs[e.Interface])
			}
		}
		slices.Sort(status)
		if !slices.Equal(status, want) {
			return fmt.Errorf("network-status names %v", status)
		}
		return nil
	})
}
