// Package nodee2e runs us as users do: installed by our DaemonSet, from our
// image, on a real kubelet and containerd (testbed.LaunchKubeNode), in both
// modes. The test binary runs inside the node's network and mount namespaces,
// so it reads the node's files and links directly.
package nodee2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/test/testbed"
)

func TestMain(m *testing.M) { testbed.KubeNodeMain(m) }

// primary is the node's own pod network, what flannel or calico would install:
// a .conflist, which upstream Multus v4.3 mishandles on DEL.
const primary = `{"cniVersion":"1.0.0","name":"podnet","plugins":[
 {"type":"bridge","bridge":"cni0","isGateway":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.0.0/24"}]]}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}`

// cluster is one node with us installed in one mode.
type cluster struct {
	t    *testing.T
	ctx  context.Context
	bed  testbed.Bed
	node *testbed.KubeNode
	kc   kubernetes.Interface
	nc   nadclient.Interface
	mode string
}

// startCluster starts a node, installs us with the mode's manifest exactly as
// a user applies it, and waits until the DaemonSet is ready and the node Ready.
func startCluster(t *testing.T, mode string) *cluster {
	t.Helper()
	return startClusterWith(t, mode)
}

// startClusterWith is startCluster with more image archives imported.
func startClusterWith(t *testing.T, mode string, images ...string) *cluster {
	t.Helper()
	bed := testbed.Require(t)
	for _, p := range []string{bed.Kubelet(), bed.Kubectl(), bed.Containerd(), bed.ToolboxImage()} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the node's binaries are missing (%v): run `hack/testbed.sh node`", err)
		}
	}
	image := testbed.OurImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	node, err := testbed.LaunchKubeNode(ctx, bed, dir, append([]string{image, bed.ToolboxImage()}, images...)...)
	if err != nil {
		t.Fatalf("starting the node: %v", err)
	}
	c := &cluster{t: t, ctx: ctx, bed: bed, node: node, mode: mode}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
		node.Stop()
	})
	if c.kc, err = kubernetes.NewForConfig(node.AdminConfig()); err != nil {
		t.Fatal(err)
	}
	if c.nc, err = nadclient.NewForConfig(node.AdminConfig()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/etc/cni/net.d/10-podnet.conflist", []byte(primary), 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := testbed.ThickManifest
	if mode == "thin" {
		manifest = testbed.ThinManifest
	}
	c.kubectl("apply", "-f", filepath.Join(bed.Root, manifest))
	c.kubectl("-n", "kube-system", "rollout", "status", "ds/kube-multus-ds", "--timeout=4m")
	if err := node.WaitReady(ctx, 3*time.Minute); err != nil {
		t.Fatalf("the node never turned Ready: %v", err)
	}
	return c
}

// kubectl runs the real kubectl against the cluster and returns its output.
func (c *cluster) kubectl(args ...string) string {
	c.t.Helper()
	cmd := exec.CommandContext(c.ctx, c.bed.Kubectl(), append([]string{"--kubeconfig", c.node.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// dumpLogs prints the tails of every component's log and the daemon's.
func (c *cluster) dumpLogs() {
	for _, p := range []*testbed.Process{c.node.Kubelet, c.node.Containerd, c.node.CP.APIServer} {
		if p != nil {
			c.t.Logf("--- %s\n%s", p.Name, p.Tail(30))
		}
	}
	out, _ := exec.Command(c.bed.Kubectl(), "--kubeconfig", c.node.Kubeconfig, "get", "pods", "-A", "-o", "wide").CombinedOutput()
	c.t.Logf("--- pods\n%s", out)
	out, _ = exec.Command(c.bed.Kubectl(), "--kubeconfig", c.node.Kubeconfig, "-n", "kube-system", "logs", "ds/kube-multus-ds", "--tail=40").CombinedOutput()
	c.t.Logf("--- the DaemonSet's log\n%s", out)
	out, _ = exec.Command("lsns", "-t", "net").CombinedOutput()
	c.t.Logf("--- network namespaces\n%s", out)
	out, _ = exec.Command("findmnt", "-t", "nsfs").CombinedOutput()
	c.t.Logf("--- nsfs mounts\n%s", out)
}

// nads creates the test's networks: blue, a bridge with host-local
// addresses, and red, macvlan on a bridge master with static addresses.
func (c *cluster) nads() {
	c.t.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br-red"}}
	if err := netlink.LinkAdd(br); err != nil {
		c.t.Fatal(err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		c.t.Fatal(err)
	}
	for name, conf := range map[string]string{
		"blue": `{"cniVersion":"1.0.0","name":"blue","type":"bridge","bridge":"br-blue","ipam":{"type":"host-local","subnet":"192.168.50.0/24"}}`,
		"red":  `{"cniVersion":"1.0.0","name":"red","plugins":[{"type":"macvlan","master":"br-red","mode":"bridge","capabilities":{"ips":true},"ipam":{"type":"static"}}]}`,
	} {
		testbed.CreateNAD(c.ctx, c.t, c.nc, "default", name, conf, nil)
	}
}

// pod creates a pod of the toolbox image with the networks annotation.
func (c *cluster) pod(name, networks string) {
	c.t.Helper()
	zero := int64(0)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": networks}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{Name: "toolbox", Image: c.bed.ToolboxImageRef(), ImagePullPolicy: corev1.PullNever,
				Command: []string{"sleep", "3600"}}},
		},
	}
	if _, err := c.kc.CoreV1().Pods("default").Create(c.ctx, pod, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// waitRunning waits until every named pod is Running and Ready.
func (c *cluster) waitRunning(timeout time.Duration, names ...string) {
	c.t.Helper()
	c.eventually(timeout, fmt.Sprintf("pods %v Running", names), func() error {
		for _, n := range names {
			p, err := c.kc.CoreV1().Pods("default").Get(c.ctx, n, metav1.GetOptions{})
			if err != nil {
				return err
			}
			ready := false
			for _, cond := range p.Status.Conditions {
				ready = ready || (cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue)
			}
			if !ready {
				return fmt.Errorf("pod %s is %s", n, p.Status.Phase)
			}
		}
		return nil
	})
}

// deletePods deletes the pods and waits until they are gone: each one's DEL
// must succeed the first time, or the kubelet keeps them Terminating.
func (c *cluster) deletePods(timeout time.Duration, names ...string) {
	c.t.Helper()
	zero := int64(0)
	for _, n := range names {
		if err := c.kc.CoreV1().Pods("default").Delete(c.ctx, n, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			c.t.Fatal(err)
		}
	}
	c.eventually(timeout, fmt.Sprintf("pods %v gone", names), func() error {
		for _, n := range names {
			if _, err := c.kc.CoreV1().Pods("default").Get(c.ctx, n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("pod %s still exists (%v)", n, err)
			}
		}
		return nil
	})
}

// networkStatus is a pod's network-status annotation.
func (c *cluster) networkStatus(name string) []netstatus.Entry {
	c.t.Helper()
	p, err := c.kc.CoreV1().Pods("default").Get(c.ctx, name, metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	entries, err := netstatus.Decode(p.Annotations[netstatus.Annotation])
	if err != nil {
		c.t.Fatalf("network-status of %s: %v", name, err)
	}
	return entries
}

// podAddrs are a pod's IPv4 addresses by interface, as `ip` in the pod shows.
func (c *cluster) podAddrs(name string) map[string]string {
	c.t.Helper()
	out := c.kubectl("exec", name, "--", "ip", "-o", "-4", "addr")
	addrs := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[2] == "inet" {
			addrs[f[1]] = strings.Split(f[3], "/")[0]
		}
	}
	return addrs
}

// leftovers lists what a deleted pod could leave on the node: host-local
// allocations, our attachment records, containerd's libcni result cache,
// and veth links.
func leftovers() []string {
	var out []string
	ips, _ := filepath.Glob("/var/lib/cni/networks/*/[0-9]*")
	out = append(out, ips...)
	records, _ := filepath.Glob("/var/lib/cni/multus/attachments/*.json")
	out = append(out, records...)
	results, _ := filepath.Glob("/var/lib/cni/results/*")
	out = append(out, results...)
	links, _ := netlink.LinkList()
	for _, l := range links {
		if l.Type() == "veth" {
			out = append(out, "link "+l.Attrs().Name)
		}
	}
	return out
}

func (c *cluster) eventually(timeout time.Duration, what string, cond func() error) {
	c.t.Helper()
	var err error
	for deadline := time.Now().Add(timeout); ; time.Sleep(250 * time.Millisecond) {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
	}
}
