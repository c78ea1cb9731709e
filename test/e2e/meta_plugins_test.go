package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// TestPortmapAndBandwidthOnSecondary runs the real portmap and bandwidth plugins
// chained on a secondary network: the selection's portMappings (R-4.1.2.1.7) and
// bandwidth (R-4.1.2.1.8) reach them, the DNAT rule and the traffic shaper exist in
// the node after ADD, and DEL, from the record, removes them: upstream does not
// keep these requests for DEL and leaks the rules (multus-features 18.8).
func TestPortmapAndBandwidthOnSecondary(t *testing.T) {
	modes(t, func(t *testing.T) {
		for _, v := range []string{"0.4.0", "1.0.0", "1.1.0"} {
			t.Run(v, func(t *testing.T) {
				e := newEnv(t)
				br := fmt.Sprintf("pbr%d", e.idx)
				t.Cleanup(func() { deleteLink(t, br) })
				hostPort := 20000 + e.idx
				e.nad("shaped", fmt.Sprintf(`{"cniVersion":%q,"name":"shaped","plugins":[
				{"type":"bridge","bridge":%q,"ipam":{"type":"host-local","subnet":"172.30.%d.0/24","dataDir":%q}},
				{"type":"portmap","capabilities":{"portMappings":true}},
				{"type":"bandwidth","capabilities":{"bandwidth":true}}]}`, v, br, e.idx%250, e.dataDir), nil)
				_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": fmt.Sprintf(`[{"name":"shaped",
				"portMappings":[{"hostPort":%d,"containerPort":80,"protocol":"tcp"}],
				"bandwidth":{"ingressRate":8000000,"ingressBurst":800000}}]`, hostPort)})
				conf := e.multusConf(v, nil)
				e.add(conf, sb)
				if rules := run(t, "iptables-save", "-t", "nat"); !strings.Contains(rules, fmt.Sprintf("--dport %d", hostPort)) {
					t.Errorf("no DNAT rule for host port %d after ADD:\n%s", hostPort, rules)
				}
				if qd := run(t, "tc", "qdisc", "show"); !strings.Contains(qd, "tbf") {
					t.Errorf("no tbf shaper after ADD:\n%s", qd)
				}
				e.del(conf, sb)
				if rules := run(t, "iptables-save", "-t", "nat"); strings.Contains(rules, fmt.Sprintf("--dport %d", hostPort)) {
					t.Errorf("the DNAT rule for host port %d survived DEL:\n%s", hostPort, rules)
				}
			})
		}
	})
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}
