package nodee2e

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/polynet-cni/polynet/test/testbed"
)

// TestPodsWithNetworks, in both modes: pods asking for a bridge network and a
// macvlan network with a static address and an interface name of their own
// come up Running with exactly those interfaces and addresses, network-status
// says so, and deleting them (the cluster network is a .conflist) finishes at
// the first DEL and leaves no address, record, result cache or link behind.
func TestPodsWithNetworks(t *testing.T) {
	for _, mode := range []string{"thick", "thin"} {
		t.Run(mode, func(t *testing.T) {
			c := startCluster(t, mode)
			c.nads()
			pods := []string{"pod-a", "pod-b", "pod-c"}
			for i, p := range pods {
				c.pod(p, fmt.Sprintf(`[{"name":"blue"},{"name":"red","interface":"red0","ips":["192.168.60.%d/24"]}]`, 10+i))
			}
			c.waitRunning(3*time.Minute, pods...)
			for i, p := range pods {
				st := c.networkStatus(p)
				var got []string
				for _, e := range st {
					got = append(got, e.Name+"@"+e.Interface)
				}
				want := []string{"podnet@eth0", "default/blue@net1", "default/red@red0"}
				if !slices.Equal(got, want) {
					t.Errorf("%s network-status %v, want %v", p, got, want)
					continue
				}
				addrs := c.podAddrs(p)
				staticIP := fmt.Sprintf("192.168.60.%d", 10+i)
				for j, e := range st {
					if len(e.IPs) != 1 || addrs[e.Interface] != e.IPs[0] {
						t.Errorf("%s: network-status says %s has %v, the pod has %q", p, e.Interface, e.IPs, addrs[e.Interface])
					}
					if j == 2 && addrs["red0"] != staticIP {
						t.Errorf("%s: red0 has %q, want the static %s", p, addrs["red0"], staticIP)
					}
				}
			}
			c.kubectl("exec", "pod-a", "--", "ping", "-c", "2", "-W", "5", "192.168.60.11")
			c.deletePods(time.Minute, pods...)
			c.eventually(3*time.Minute, "nothing left on the node", func() error {
				if l := leftovers(); len(l) > 0 {
					return fmt.Errorf("left: %v", l)
				}
				return nil
			})
		})
	}
}

// TestDaemonKilledDuringBurst: the node daemon is killed (SIGKILL) while 20
// pods are being set up. The shim answers "try again later" while it is
// away, the kubelet restarts it and retries, and every pod ends Running with
// its networks; deleting them leaves nothing.
func TestDaemonKilledDuringBurst(t *testing.T) {
	c := startCluster(t, "thick")
	c.nads()
	var pods []string
	for i := range 20 {
		name := fmt.Sprintf("burst-%02d", i)
		pods = append(pods, name)
		c.pod(name, `[{"name":"blue"}]`)
		if i == 5 {
			pid := daemonPID(t)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			t.Logf("killed multus-daemon (pid %d) after %d pods were created", pid, i+1)
		}
	}
	c.waitRunning(5*time.Minute, pods...)
	for _, p := range pods {
		if st := c.networkStatus(p); len(st) != 2 {
			t.Errorf("%s network-status %+v, want 2 entries", p, st)
		}
	}
	c.deletePods(2*time.Minute, pods...)
	c.eventually(3*time.Minute, "nothing left on the node", func() error {
		if l := leftovers(); len(l) > 0 {
			return fmt.Errorf("left: %v", l)
		}
		return nil
	})
}

// daemonPID finds the running multus-daemon (a container's process, seen
// from the node).
func daemonPID(t *testing.T) int {
	t.Helper()
	// The DaemonSet runs it without arguments; its exec probes run it with some.
	pids := testbed.PIDsByArgs("/usr/src/multus-cni/bin/multus-daemon")
	if len(pids) != 1 {
		t.Fatalf("multus-daemon processes: %v, want one", pids)
	}
	return pids[0]
}
