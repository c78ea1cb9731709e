package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	"github.com/vishvananda/netlink"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/polynet-cni/polynet/test/testbed"
)

// The three ways a pod's networks are set up, side by side.
const (
	// direct: the delegates called through libcni by directcni, the floor.
	direct = "direct"
	// thin: the multus binary, reading the pod and NADs from the API server.
	thin = "thin"
	// thick: multus-shim forwarding to a warm multus-daemon.
	thick = "thick"
)

var variants = []string{direct, thin, thick}

// delegatePlugins are the reference plugins the benchmarks' networks use.
var delegatePlugins = []string{"bridge", "host-local", "macvlan"}

// world is one benchmark's node: a namespace on the shared control plane, up to
// five networks (the cluster network and NADs, each on a bridge or macvlan
// master of its own), a daemon of its own, and the three top-level binaries.
type world struct {
	tb        testing.TB
	ctx       context.Context
	kc        kubernetes.Interface
	namespace string
	dir       string
	pluginDir string
	// peakDir holds the wrappers that report each plugin's peak RSS into
	// peaksFile (peakWrappers).
	peakDir, peaksFile string
	bins               map[string]string // variant -> top-level binary
	thinKubeconfig     string
	daemon             *testbed.Daemon
	// networks are the cluster network (eth0) and then the NADs (net1...).
	networks []network
}

// network is one attachment of the benchmarks' pods.
type network struct {
	nad    string // the NAD's name; empty for the cluster network
	ifName string
	conf   json.RawMessage
}

// newWorld builds a node for a benchmark. prefix (one letter) keeps its link
// names apart from another benchmark's; octet is the second octet of its
// subnets, 10.<octet+i>.0.0/16 for network i.
func newWorld(b *testing.B, prefix string, octet, networks int) *world {
	b.Helper()
	bed := testbed.Require(b)
	cp := testbed.SharedControlPlane(b)
	kc, nc := cp.AdminClients(b)
	ctx := testbed.Context(b)
	w := &world{
		tb: b, ctx: ctx, kc: kc, dir: b.TempDir(), pluginDir: bed.CNIPluginDir(),
		namespace: fmt.Sprintf("bench-%s-%d", prefix, os.Getpid()),
	}
	w.peakDir, w.peaksFile = filepath.Join(w.dir, "peak-bin"), filepath.Join(w.dir, "peaks")
	if err := peakWrappers(w.peakDir, w.pluginDir, w.peaksFile, delegatePlugins); err != nil {
		b.Fatal(err)
	}
	testbed.CreateNamespace(ctx, b, kc, w.namespace)
	w.addNetworks(b, nc, prefix, octet, networks)
	w.bins = map[string]string{
		direct: buildDirectCNI(b, bed.Root, w.dir),
		thin:   testbed.Binary(b, "multus"),
		thick:  testbed.Binary(b, "multus-shim"),
	}
	// The thin plugin runs as the thin DaemonSet's ServiceAccount, with the very
	// ClusterRole operators install.
	rules, err := testbed.ClusterRoleRules(filepath.Join(bed.Root, testbed.ThinManifest))
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := cp.ServiceAccount(ctx, "kube-system", fmt.Sprintf("multus-bench-%s-%d", prefix, os.Getpid()), rules, 2*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	w.thinKubeconfig = filepath.Join(w.dir, "thin-kubeconfig")
	if err := testbed.WriteKubeconfig(w.thinKubeconfig, cfg); err != nil {
		b.Fatal(err)
	}
	w.daemon = testbed.StartDaemon(b, cp, testbed.DaemonOptions{Account: fmt.Sprintf("multus-daemon-bench-%s-%d", prefix, os.Getpid())})
	return w
}

// addNetworks makes the cluster network and networks-1 NADs: bridge networks,
// and every second one a macvlan network whose master is a bridge made here
// (the kernel of the test machines has no dummy links). So 3 networks are
// bridge, bridge, macvlan; 5 are bridge, bridge, macvlan, bridge, macvlan.
func (w *world) addNetworks(b *testing.B, nc nadclient.Interface, prefix string, octet, n int) {
	b.Helper()
	for i := range n {
		ipam := fmt.Sprintf(`{"type":"host-local","subnet":"10.%d.0.0/16","dataDir":%q}`, octet+i, filepath.Join(w.dir, "ipam"))
		name := fmt.Sprintf("net-%d", i)
		var plugin string
		if i%2 == 0 && i > 0 {
			master := fmt.Sprintf("b%smv%d", prefix, i)
			addLink(b, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: master}})
			plugin = fmt.Sprintf(`{"type":"macvlan","master":%q,"mode":"bridge","ipam":%s}`, master, ipam)
		} else {
			br := fmt.Sprintf("b%sbr%d", prefix, i)
			b.Cleanup(func() { deleteLinkNamed(b, br) })
			plugin = fmt.Sprintf(`{"type":"bridge","bridge":%q,"isGateway":%t,"ipam":%s}`, br, i == 0, ipam)
		}
		if i == 0 {
			name = "cluster-net"
		}
		conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[%s]}`, name, plugin)
		nw := network{ifName: "eth0", conf: json.RawMessage(conf)}
		if i > 0 {
			nw.nad, nw.ifName = name, fmt.Sprintf("net%d", i)
			testbed.CreateNAD(w.ctx, b, nc, w.namespace, name, conf, nil)
		}
		w.networks = append(w.networks, nw)
	}
}

// annotation is the networks annotation of a pod with n networks in all.
func (w *world) annotation(n int) map[string]string {
	if n < 2 {
		return nil
	}
	var names []string
	for _, nw := range w.networks[1:n] {
		names = append(names, nw.nad)
	}
	return map[string]string{"k8s.v1.cni.cncf.io/networks": strings.Join(names, ",")}
}

// stdin is the configuration a variant's binary reads for a pod with n
// networks. With peaks, the delegates are found in the wrappers' folder.
func (w *world) stdin(variant string, n int, peaks bool) []byte {
	binDir := w.pluginDir
	if peaks {
		binDir = w.peakDir
	}
	var conf map[string]any
	switch variant {
	case direct:
		nets := make([]map[string]any, n)
		for i, nw := range w.networks[:n] {
			nets[i] = map[string]any{"ifName": nw.ifName, "conf": nw.conf}
		}
		conf = map[string]any{"binDir": binDir, "cacheDir": filepath.Join(w.dir, "cni-direct"), "networks": nets}
	case thin, thick:
		// The thin plugin's conf as thin_entrypoint writes it, the cluster
		// network inline; the shim's carries the same keys to the daemon.
		conf = map[string]any{
			"cniVersion": "1.0.0", "name": "multus-cni-network", "type": "multus",
			"kubeconfig": w.thinKubeconfig, "cniDir": filepath.Join(w.dir, "cni-"+variant),
			"confDir": filepath.Join(w.dir, "confdir"), "binDir": binDir,
			"delegates": []any{w.networks[0].conf},
		}
		if variant == thick {
			conf["type"], conf["daemonSocketDir"] = "multus-shim", w.daemon.SocketDir
			delete(conf, "kubeconfig")
		}
	}
	data, err := json.Marshal(conf)
	if err != nil {
		w.tb.Fatal(err)
	}
	return data
}

// invocation is the runtime's call of a variant's binary for a sandbox.
func (w *world) invocation(variant, command string, sb testbed.Sandbox, n int, peaks bool) invocation {
	bin := w.bins[variant]
	return invocation{
		bin:   bin,
		env:   testbed.CNIEnv(command, sb, filepath.Dir(bin), w.pluginDir),
		stdin: w.stdin(variant, n, peaks),
	}
}

// createPod creates a pod with n networks and returns it as the runtime knows it.
func (w *world) createPod(name string, n int) testbed.Pod {
	pod := testbed.CreatePod(w.ctx, w.tb, w.kc, w.namespace, name, w.annotation(n))
	return testbed.Pod{Namespace: w.namespace, Name: name, UID: string(pod.UID)}
}

// deletePod deletes a pod at once, as the kubelet does after its sandbox is
// gone.
func (w *world) deletePod(name string) {
	zero := int64(0)
	ctx, cancel := context.WithTimeout(w.ctx, testbed.CallTimeout)
	defer cancel()
	if err := w.kc.CoreV1().Pods(w.namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		w.tb.Errorf("deleting pod %s: %v", name, err)
	}
}

// buildDirectCNI builds the directcni program into dir, statically like our
// binaries.
func buildDirectCNI(tb testing.TB, root, dir string) string {
	tb.Helper()
	out := filepath.Join(dir, "directcni")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./test/bench/directcni")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building directcni: %v\n%s", err, msg)
	}
	return out
}

// addLink adds a link in the node's namespace, sets it up, and deletes it
// when the benchmark ends.
func addLink(tb testing.TB, link netlink.Link) {
	tb.Helper()
	if err := netlink.LinkAdd(link); err != nil {
		tb.Fatalf("adding %s: %v", link.Attrs().Name, err)
	}
	tb.Cleanup(func() { deleteLinkNamed(tb, link.Attrs().Name) })
	if err := netlink.LinkSetUp(link); err != nil {
		tb.Fatal(err)
	}
}

// deleteLinkNamed deletes a link of the node's namespace if it exists.
func deleteLinkNamed(tb testing.TB, name string) {
	if link, err := netlink.LinkByName(name); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			tb.Errorf("deleting %s: %v", name, err)
		}
	}
}
