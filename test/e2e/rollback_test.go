package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/test/testbed"
)

// remains lists what is left of a sandbox's networks: links in its namespace
// besides lo, host-local allocations, its attachment record and the results
// the delegates cached. An empty list is a sandbox with nothing attached.
func (e *env) remains(sb testbed.Sandbox, netns *testbed.NetNS) []string {
	e.t.Helper()
	var out []string
	for name := range links(e.t, netns) {
		if name != "lo" {
			out = append(out, "link "+name)
		}
	}
	if n := ipamFiles(e.t, e.dataDir); n > 0 {
		out = append(out, fmt.Sprintf("%d host-local allocation(s)", n))
	}
	if _, err := os.Stat(e.recordFile(sb)); err == nil {
		out = append(out, "attachment record")
	}
	cached, _ := filepath.Glob(filepath.Join(e.cniDir, "results", "*-"+sb.ContainerID+"-*"))
	for _, c := range cached {
		out = append(out, "cached result "+filepath.Base(c))
	}
	slices.Sort(out)
	return out
}

// waitRemains waits, bounded, until nothing is left of the sandbox's networks
// (the daemon rolls back after the runtime has gone) and returns what is left.
func (e *env) waitRemains(sb testbed.Sandbox, netns *testbed.NetNS, within time.Duration) []string {
	e.t.Helper()
	left := e.remains(sb, netns)
	for deadline := time.Now().Add(within); len(left) > 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		left = e.remains(sb, netns)
	}
	return left
}

// waitRecorded waits until the recorder has recorded a command, and fails the
// test if it does not within 20 s.
func (e *env) waitRecorded(command string) {
	e.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); len(e.recordsFor(command)) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("the recorder never saw %s\nlog:\n%s", command, e.log())
		}
	}
}

// TestThickShimKilledMidAddRollsBack: the runtime gives up on an ADD (its
// timeout ends, or it kills the shim) while the daemon runs a slow second
// delegate, after the cluster network (real bridge + host-local) is attached.
// The shim's connection closes, the daemon's request ends and the slow delegate
// is killed; the rollback must still run to completion on a context of its
// own, so nothing is left before the runtime's DEL comes: no link in the pod,
// no host-local address, no record, no cached result; and the slow delegate got
// its DEL. The runtime's DEL afterwards succeeds.
func TestThickShimKilledMidAddRollsBack(t *testing.T) {
	const v = "1.0.0"
	e := thickEnv(t, nil)
	e.nad("slow", e.recorderConf(v, "slow", map[string]any{"sleepMs": 60000}), nil)
	conf := e.multusConf(v, nil)
	_, sb, netns := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "slow"})

	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := e.rt.Add(ctx, conf, sb); done <- err }()
	e.waitRecorded("ADD")
	if got := links(t, netns); len(got["eth0"]) != 1 {
		t.Fatalf("pod links %v while the second delegate runs, want eth0 of the cluster network", got)
	}
	cancel() // libcni kills the shim, as a runtime that gives up does
	if err := <-done; err == nil {
		t.Fatal("ADD succeeded although the runtime killed the shim")
	}
	if left := e.waitRemains(sb, netns, 30*time.Second); len(left) > 0 {
		t.Errorf("left after the shim was killed mid-ADD: %v\ndaemon log:\n%s", left, e.log())
	}
	if dels := e.recordsFor("DEL"); len(dels) != 1 || dels[0].Env["CNI_IFNAME"] != "net1" {
		t.Errorf("recorder DELs %d, want the rollback's DEL of the killed attachment (net1)", len(dels))
	}
	e.del(conf, sb) // the runtime's DEL after a failed ADD
	if left := e.remains(sb, netns); len(left) > 0 {
		t.Errorf("left after the runtime's DEL: %v", left)
	}
}

// TestLateFailureRollsBack: a failure after every delegate succeeded (the
// cluster network's result, without an address, cannot be given in the
// runtime's version 0.1.0 or 0.2.0, which require one) fails the ADD and rolls
// it back like any other (R-7.2a): both attachments (a recorder as cluster
// network, a real bridge + host-local network) get their DEL, and nothing is
// left; network-status is not written, since nothing is attached (section 5
// describes attachments that exist).
func TestLateFailureRollsBack(t *testing.T) {
	modes(t, func(t *testing.T) {
		for _, v := range []string{"0.1.0", "0.2.0"} {
			t.Run(v, func(t *testing.T) {
				e := newEnv(t)
				e.nad("real", fmt.Sprintf(`{"cniVersion":"1.0.0","name":"real","type":"bridge","bridge":%q,
					"ipam":{"type":"host-local","subnet":%q,"dataDir":%q}}`, e.bridge, e.subnet, e.dataDir), nil)
				_, sb, netns := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "real"})
				cluster := e.recorderConf("1.0.0", "cluster-net", map[string]any{"result": map[string]any{
					"cniVersion": "1.0.0", "interfaces": []any{map[string]any{"name": "eth0", "sandbox": sb.NetNS}},
				}})
				conf := e.multusConf(v, map[string]any{"delegates": []any{json.RawMessage(cluster)}})

				_, err := e.rt.Add(e.ctx, conf, sb)
				if err == nil {
					t.Fatalf("ADD in %s of a cluster network without an address succeeded", v)
				}
				if ce := cniError(t, err); !strings.Contains(ce.Msg, v) {
					t.Errorf("error %q does not name the version %s", ce.Msg, v)
				}
				if left := e.remains(sb, netns); len(left) > 0 {
					t.Errorf("left after the failed ADD: %v\nlog:\n%s", left, e.log())
				}
				if dels := e.recordsFor("DEL"); len(dels) != 1 {
					t.Errorf("%d DELs of the cluster network, want the rollback's 1", len(dels))
				}
				pod, err := e.kc.CoreV1().Pods(e.namespace).Get(e.ctx, "pod-1", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if value, ok := pod.Annotations[netstatus.Annotation]; ok {
					t.Errorf("network-status %s written for a pod whose ADD was rolled back", value)
				}
				e.del(conf, sb)
			})
		}
	})
}
