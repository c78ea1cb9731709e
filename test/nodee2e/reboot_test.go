package nodee2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestReboot cuts the node's power, in effect: containers, shims, containerd,
// the kubelet and the daemon are killed with SIGKILL and /run (the pods'
// network namespaces among it) is lost; then containerd and the kubelet boot
// again. Every pod comes back Running with its networks in a new sandbox,
// and nothing of the old sandboxes is left: no address allocation beyond one
// per pod and network, and attachment records only for the new sandboxes.
func TestReboot(t *testing.T) {
	c := startCluster(t, "thick")
	c.nads()
	pods := []string{"pod-a", "pod-b", "pod-c"}
	for i, p := range pods {
		c.pod(p, fmt.Sprintf(`[{"name":"blue"},{"name":"red","interface":"red0","ips":["192.168.60.%d/24"]}]`, 10+i))
	}
	c.waitRunning(3*time.Minute, pods...)
	before := map[string]string{}
	for _, p := range pods {
		s := sandboxesOf(t, c, p)
		if len(s) != 1 {
			t.Fatalf("%s has sandboxes %v before the reboot", p, s)
		}
		before[p] = s[0]
	}

	if err := c.node.Reboot(c.ctx); err != nil {
		t.Fatalf("reboot: %v", err)
	}
	c.eventually(4*time.Minute, "every pod back in a new sandbox, the old one torn down", func() error {
		for _, p := range pods {
			s := sandboxesOf(t, c, p)
			if len(s) != 1 || s[0] == before[p] {
				return fmt.Errorf("%s has the sandboxes %v (before: %s)", p, s, before[p])
			}
		}
		return nil
	})
	c.waitRunning(4*time.Minute, pods...)
	for _, p := range pods {
		if st := c.networkStatus(p); len(st) != 3 {
			t.Errorf("%s network-status after the reboot %+v", p, st)
		}
		if addrs := c.podAddrs(p); addrs["net1"] == "" || addrs["red0"] == "" {
			t.Errorf("%s interfaces after the reboot %v", p, addrs)
		}
	}
	c.eventually(2*time.Minute, "nothing of the old sandboxes left", func() error {
		ips, _ := filepath.Glob("/var/lib/cni/networks/*/[0-9]*")
		// One address per pod on the cluster network and on blue, and
		// the daemon's pod is on the host's network.
		if len(ips) != 2*len(pods) {
			return fmt.Errorf("host-local allocations %v, want %d", ips, 2*len(pods))
		}
		records, _ := filepath.Glob("/var/lib/cni/multus/attachments/*.json")
		if len(records) != len(pods) {
			return fmt.Errorf("attachment records %v, want %d", records, len(pods))
		}
		for _, p := range pods {
			if _, err := os.Stat(filepath.Join("/var/lib/cni/multus/attachments", before[p]+".json")); err == nil {
				return fmt.Errorf("the record of %s's old sandbox %s is left", p, before[p])
			}
		}
		return nil
	})
	c.deletePods(time.Minute, pods...)
	// The old sandboxes' host-side veths go when the kernel destroys their
	// network namespaces, which it does asynchronously.
	c.eventually(2*time.Minute, "nothing left on the node", func() error {
		if l := leftovers(); len(l) > 0 {
			return fmt.Errorf("left: %v", l)
		}
		return nil
	})
}

// sandboxesOf are the sandbox IDs our attachment records hold for a pod.
func sandboxesOf(t *testing.T, c *cluster, pod string) []string {
	t.Helper()
	p, err := c.kc.CoreV1().Pods("default").Get(c.ctx, pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	records, _ := filepath.Glob("/var/lib/cni/multus/attachments/*.json")
	for _, r := range records {
		data, err := os.ReadFile(r)
		if err == nil && containsUID(data, string(p.UID)) {
			ids = append(ids, strings.TrimSuffix(filepath.Base(r), ".json"))
		}
	}
	return ids
}

func containsUID(data []byte, uid string) bool {
	return uid != "" && strings.Contains(string(data), uid)
}
