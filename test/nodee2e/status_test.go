package nodee2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestStatusFollowsDaemon: with a CNI 1.1.0 configuration, containerd calls
// STATUS on the shim every few seconds, the shim asks the daemon, and the
// node's network readiness follows the daemon: NotReady while no daemon
// runs on the node, Ready again once it is back.
func TestStatusFollowsDaemon(t *testing.T) {
	c := startCluster(t, "thick")
	cm, err := c.kc.CoreV1().ConfigMaps("kube-system").Get(c.ctx, "multus-daemon-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := json.Unmarshal([]byte(cm.Data["daemon-config.json"]), &conf); err != nil {
		t.Fatal(err)
	}
	conf["cniVersion"] = "1.1.0"
	data, _ := json.Marshal(conf)
	cm.Data["daemon-config.json"] = string(data)
	if _, err := c.kc.CoreV1().ConfigMaps("kube-system").Update(c.ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.kubectl("-n", "kube-system", "rollout", "restart", "ds/kube-multus-ds")
	c.kubectl("-n", "kube-system", "rollout", "status", "ds/kube-multus-ds", "--timeout=4m")
	c.eventually(2*time.Minute, "a 1.1.0 configuration of ours", func() error {
		b, err := os.ReadFile("/etc/cni/net.d/00-multus.conflist")
		if err != nil || !strings.Contains(string(b), `"cniVersion": "1.1.0"`) {
			return fmt.Errorf("00-multus.conflist: %q %v", b, err)
		}
		return nil
	})

	// No daemon on the node: a nodeSelector no node matches.
	c.kubectl("-n", "kube-system", "patch", "ds/kube-multus-ds", "--type=merge",
		"-p", `{"spec":{"template":{"spec":{"nodeSelector":{"polynet.test/nowhere":"x"}}}}}`)
	c.eventually(3*time.Minute, "the node NotReady for its network", c.nodeNetwork(false))

	c.kubectl("-n", "kube-system", "patch", "ds/kube-multus-ds", "--type=json",
		"-p", `[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]`)
	c.kubectl("-n", "kube-system", "rollout", "status", "ds/kube-multus-ds", "--timeout=4m")
	c.eventually(3*time.Minute, "the node Ready again", c.nodeNetwork(true))
}

// nodeNetwork returns a check that the node's Ready condition is ready, or
// not ready because of its network.
func (c *cluster) nodeNetwork(ready bool) func() error {
	return func() error {
		nodes, err := c.kc.CoreV1().Nodes().List(c.ctx, metav1.ListOptions{})
		if err != nil || len(nodes.Items) != 1 {
			return fmt.Errorf("nodes: %v", err)
		}
		for _, cond := range nodes.Items[0].Status.Conditions {
			if cond.Type != corev1.NodeReady {
				continue
			}
			isReady := cond.Status == corev1.ConditionTrue
			switch {
			case ready && isReady:
				return nil
			case !ready && !isReady && strings.Contains(cond.Message, "NetworkReady=false"):
				c.t.Logf("node NotReady: %s", cond.Message)
				return nil
			}
			return fmt.Errorf("Ready=%s: %s", cond.Status, cond.Message)
		}
		return fmt.Errorf("no Ready condition")
	}
}
