// Package e2e runs the meta-plugin as a container runtime runs it, against a real
// control plane, real network namespaces and the real reference plugins.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/test/recording"
	"github.com/polynet-cni/polynet/test/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }

// cniVersions are the spec versions the tables run over.
var cniVersions = []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

var envSeq atomic.Int32

// env is one test's world: a namespace of its own on the shared control plane, its
// own folders, a cluster network (bridge + host-local) with its own bridge and
// subnet, and a runtime that invokes the multus binary through libcni.
type env struct {
	t   *testing.T
	bed testbed.Bed
	cp  *testbed.ControlPlane
	kc  kubernetes.Interface
	nc  nadclient.Interface
	ctx context.Context

	idx       int
	namespace string
	// Folders: multus's cniDir and confDir, host-local's dataDir, the runtime's
	// libcni cache, the recorder's records, the multus log.
	cniDir, confDir, dataDir, cacheDir, recordDir, logFile string
	kubeconfig                                             string
	bridge, subnet                                         string
	rt                                                     *testbed.Runtime
	// mode is "thin" (the runtime runs multus) or "thick" (it runs multus-shim,
	// which forwards to the shared multus-daemon).
	mode   string
	daemon *testbed.Daemon
}

// modes runs f once per mode, as subtests "thin" and "thick": every behaviour of
// the engine holds in both. newEnv reads the mode from the subtest's name.
func modes(t *testing.T, f func(t *testing.T)) {
	for _, m := range []string{"thin", "thick"} {
		t.Run(m, f)
	}
}

func modeOf(t *testing.T) string {
	if strings.Contains(t.Name(), "/thick") {
		return "thick"
	}
	return "thin"
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cp := testbed.SharedControlPlane(t)
	var d *testbed.Daemon
	if modeOf(t) == "thick" {
		d = testbed.SharedDaemon(t)
	}
	return newEnvOn(t, cp, d)
}

// newEnvOn is newEnv on the control plane cp: in thick mode with the daemon d,
// in thin mode when d is nil.
func newEnvOn(t *testing.T, cp *testbed.ControlPlane, d *testbed.Daemon) *env {
	t.Helper()
	bed := testbed.Require(t)
	kc, nc := cp.AdminClients(t)
	// Not a budget for the test: the bed bounds each call (testbed.Context).
	ctx := testbed.Context(t)
	idx := int(envSeq.Add(1))
	tmp := t.TempDir()
	e := &env{
		t: t, bed: bed, cp: cp, kc: kc, nc: nc, ctx: ctx, idx: idx,
		namespace: fmt.Sprintf("e2e-%d", idx),
		cniDir:    filepath.Join(tmp, "cni"), confDir: filepath.Join(tmp, "confdir"),
		dataDir: filepath.Join(tmp, "ipam"), cacheDir: filepath.Join(tmp, "runtime-cache"),
		recordDir: filepath.Join(tmp, "records"), logFile: filepath.Join(tmp, "multus.log"),
		kubeconfig: filepath.Join(tmp, "kubeconfig"),
		bridge:     fmt.Sprintf("cbr%d", idx), subnet: fmt.Sprintf("10.%d.%d.0/24", 100+idx/250, idx%250),
		mode: "thin", daemon: d,
	}
	if d != nil {
		e.mode = "thick"
	}
	for _, dir := range []string{e.confDir, e.dataDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testbed.CheckLeaks(t, testbed.LeakOptions{Dirs: []string{e.cniDir, e.dataDir, e.cacheDir}})
	if err := testbed.WriteKubeconfig(e.kubeconfig, cp.AdminConfig()); err != nil {
		t.Fatal(err)
	}
	testbed.CreateNamespace(ctx, t, kc, e.namespace)
	ourBins := testbed.BinDir(t, "multus", "multus-shim", "recorder", "passthru")
	e.rt = testbed.NewRuntime([]string{ourBins, bed.CNIPluginDir()}, e.cacheDir)
	t.Cleanup(func() { deleteLink(t, e.bridge) })
	return e
}

// clusterConf is the cluster network: a bridge with host-local IPAM.
func (e *env) clusterConf(version string) map[string]any {
	return map[string]any{
		"cniVersion": version, "name": "cluster-net",
		"plugins": []any{map[string]any{
			"type": "bridge", "bridge": e.bridge, "isGateway": true,
			"ipam": map[string]any{"type": "host-local", "subnet": e.subnet, "dataDir": e.dataDir},
		}},
	}
}

// multusConf is the meta-plugin's configuration, the cluster network inline as
// upstream's thin plugin writes it; extra keys override.
func (e *env) multusConf(version string, extra map[string]any) []byte {
	conf := map[string]any{
		"cniVersion": version, "name": "multus-cni-network", "type": "multus",
		"kubeconfig": e.kubeconfig, "cniDir": e.cniDir, "confDir": e.confDir,
		"binDir": e.bed.CNIPluginDir(), "logLevel": "debug", "logFile": e.logFile, "logToStderr": false,
		"delegates": []any{e.clusterConf(version)},
	}
	for k, v := range extra {
		if v == nil {
			delete(conf, k)
			continue
		}
		conf[k] = v
	}
	if e.mode == "thick" {
		conf["type"] = "multus-shim"
		conf["daemonSocketDir"] = e.daemon.SocketDir
	}
	data, err := json.Marshal(conf)
	if err != nil {
		e.t.Fatal(err)
	}
	return data
}

// pod creates a pod with the annotations and a sandbox for it: a netns and a
// container ID, as the runtime would.
func (e *env) pod(name string, annotations map[string]string) (*corev1.Pod, testbed.Sandbox, *testbed.NetNS) {
	e.t.Helper()
	pod := testbed.CreatePod(e.ctx, e.t, e.kc, e.namespace, name, annotations)
	netns := testbed.NewNetNS(e.t)
	sb := testbed.Sandbox{
		Pod:         testbed.Pod{Namespace: e.namespace, Name: name, UID: string(pod.UID)},
		ContainerID: fmt.Sprintf("ctr-%d-%s", e.idx, name),
		NetNS:       netns.Path,
	}
	return pod, sb, netns
}

// nad creates a NAD in the test's namespace (or ns when given as "ns/name").
func (e *env) nad(ref, config string, annotations map[string]string) {
	e.t.Helper()
	ns, name := e.namespace, ref
	if before, after, ok := strings.Cut(ref, "/"); ok {
		ns, name = before, after
		testbed.CreateNamespace(e.ctx, e.t, e.kc, ns)
	}
	testbed.CreateNAD(e.ctx, e.t, e.nc, ns, name, config, annotations)
}

// recorderConf is a recorder delegate's config; extra keys are merged in.
func (e *env) recorderConf(version, name string, extra map[string]any) string {
	conf := map[string]any{"cniVersion": version, "name": name, "type": "recorder", "recordDir": e.recordDir}
	for k, v := range extra {
		conf[k] = v
	}
	data, _ := json.Marshal(conf)
	return string(data)
}

func (e *env) records() []recording.Record {
	e.t.Helper()
	recs, err := recording.Read(e.recordDir)
	if err != nil {
		e.t.Fatal(err)
	}
	return recs
}

// networkStatus reads the pod's network-status annotation.
func (e *env) networkStatus(name string) []netstatus.Entry {
	e.t.Helper()
	pod, err := e.kc.CoreV1().Pods(e.namespace).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	entries, err := netstatus.Decode(pod.Annotations[netstatus.Annotation])
	if err != nil {
		e.t.Fatalf("network-status of %s: %v", name, err)
	}
	return entries
}

// events returns "reason: message" of the pod's events.
func (e *env) events(name string) []string {
	e.t.Helper()
	list, err := e.kc.CoreV1().Events(e.namespace).List(e.ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range list.Items {
		out = append(out, ev.Type+" "+ev.Reason+": "+ev.Message)
	}
	return out
}

// eventsWith returns the pod's events, joined, once one contains want or after a
// few seconds: the daemon sends events in the background.
func (e *env) eventsWith(name, want string) string {
	e.t.Helper()
	var evs string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if evs = strings.Join(e.events(name), "\n"); strings.Contains(evs, want) {
			break
		}
	}
	return evs
}

// cniError returns the CNI error in err's chain, failing the test when there is none.
func cniError(t *testing.T, err error) *types.Error {
	t.Helper()
	var ce *types.Error
	if !asCNIError(err, &ce) {
		t.Fatalf("error %v is not a CNI error", err)
	}
	return ce
}

func deleteLink(t *testing.T, name string) {
	if link, err := netlink.LinkByName(name); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			t.Errorf("deleting %s: %v", name, err)
		}
	}
}

// links returns the links of a pod namespace by name, with their IPv4 addresses.
func links(t *testing.T, netns *testbed.NetNS) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := netns.Do(func() error {
		ls, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range ls {
			addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			out[l.Attrs().Name] = []string{}
			for _, a := range addrs {
				out[l.Attrs().Name] = append(out[l.Attrs().Name], a.IPNet.String())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing links of %s: %v", netns.Name, err)
	}
	return out
}

func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// add runs ADD and fails the test on error, printing the plugin's log.
func (e *env) add(conf []byte, sb testbed.Sandbox) types.Result {
	e.t.Helper()
	res, err := e.rt.Add(e.ctx, conf, sb)
	if err != nil {
		e.t.Fatalf("ADD of %s: %v\nlog:\n%s", sb.Pod.Name, err, e.log())
	}
	return res
}

// del runs DEL and fails the test on error.
func (e *env) del(conf []byte, sb testbed.Sandbox) {
	e.t.Helper()
	if err := e.rt.Del(e.ctx, conf, sb); err != nil {
		e.t.Fatalf("DEL of %s: %v\nlog:\n%s", sb.Pod.Name, err, e.log())
	}
}

// log is the end of the meta-plugin's log: the thin plugin's file, or the daemon's.
func (e *env) log() string {
	if e.mode == "thick" {
		return e.daemon.Process.Tail(40)
	}
	return readFile(e.logFile)
}

// binary is the plugin the runtime runs in this mode.
func (e *env) binary() string {
	if e.mode == "thick" {
		return testbed.Binary(e.t, "multus-shim")
	}
	return testbed.Binary(e.t, "multus")
}

// recordFile is the attachment record of a sandbox.
func (e *env) recordFile(sb testbed.Sandbox) string {
	return filepath.Join(e.cniDir, "attachments", sb.ContainerID+".json")
}

// recordsFor returns the recorder's records of one command.
func (e *env) recordsFor(command string) []recording.Record {
	var out []recording.Record
	for _, r := range e.records() {
		if r.Command == command {
			out = append(out, r)
		}
	}
	return out
}

func testbedNamespace(e *env, name string) { testbed.CreateNamespace(e.ctx, e.t, e.kc, name) }

type (
	testbedSandbox = testbed.Sandbox
	testbedPod     = testbed.Pod
)

func (e *env) deletePod(name string) {
	e.t.Helper()
	zero := int64(0)
	if err := e.kc.CoreV1().Pods(e.namespace).Delete(e.ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) deleteNAD(name string) {
	e.t.Helper()
	if err := e.nc.K8sCniCncfIoV1().NetworkAttachmentDefinitions(e.namespace).Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

var metaGet = metav1.GetOptions{}

var writeKubeconfig = testbed.WriteKubeconfig
