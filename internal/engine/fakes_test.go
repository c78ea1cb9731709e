package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/polynet-cni/polynet/internal/adapter/hostfiles"
	"github.com/polynet-cni/polynet/internal/adapter/store"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
)

// patchCall is one PatchNetworkStatus call.
type patchCall struct {
	Ref   podnet.PodRef
	Value string
}

// eventCall is one recorded event.
type eventCall struct {
	Ref     podnet.PodRef
	Type    string
	Reason  string
	Message string
}

// fakeKube is an in-memory Kubernetes: pods and NADs keyed "namespace/name",
// missing ones are *podnet.NotFoundError; it records patches and events and
// fails the calls it is told to.
type fakeKube struct {
	pods     map[string]*podnet.Pod
	nads     map[string]*podnet.NAD
	podErr   error
	patchErr error
	eventErr error
	readyErr error

	podReads int
	patches  []patchCall
	events   []eventCall
}

func newFakeKube() *fakeKube {
	return &fakeKube{pods: map[string]*podnet.Pod{}, nads: map[string]*podnet.NAD{}}
}

func (k *fakeKube) addPod(p *podnet.Pod) { k.pods[p.Namespace+"/"+p.Name] = p }

func (k *fakeKube) addNAD(namespace, name, config string) {
	k.nads[namespace+"/"+name] = &podnet.NAD{Namespace: namespace, Name: name, Config: config}
}

func (k *fakeKube) NAD(_ context.Context, namespace, name string) (*podnet.NAD, error) {
	if n, ok := k.nads[namespace+"/"+name]; ok {
		return n, nil
	}
	return nil, &podnet.NotFoundError{Kind: "NetworkAttachmentDefinition", Namespace: namespace, Name: name}
}

func (k *fakeKube) Pod(_ context.Context, namespace, name string) (*podnet.Pod, error) {
	k.podReads++
	if k.podErr != nil {
		return nil, k.podErr
	}
	if p, ok := k.pods[namespace+"/"+name]; ok {
		return p, nil
	}
	return nil, &podnet.NotFoundError{Kind: "Pod", Namespace: namespace, Name: name}
}

func (k *fakeKube) PatchNetworkStatus(_ context.Context, ref podnet.PodRef, value string) error {
	k.patches = append(k.patches, patchCall{Ref: ref, Value: value})
	return k.patchErr
}

func (k *fakeKube) Event(_ context.Context, ref podnet.PodRef, eventType, reason, message string) error {
	k.events = append(k.events, eventCall{Ref: ref, Type: eventType, Reason: reason, Message: message})
	return k.eventErr
}

// reasons returns "Type/Reason" of every event, in order.
func (k *fakeKube) reasons() []string {
	var out []string
	for _, e := range k.events {
		out = append(out, e.Type+"/"+e.Reason)
	}
	return out
}

// delegateCall is one delegate call: "ADD" or "DEL", with what it was given.
type delegateCall struct {
	Op          string
	Network     string
	IfName      string
	ContainerID string
	NetNS       string
}

// fakeDelegates records calls in order and returns scripted results and errors
// per network; a network without a scripted result gets a 1.0.0 result with its
// interface in the sandbox and the address 10.0.0.<n>/24, n counting ADDs.
type fakeDelegates struct {
	results map[string]types.Result
	addErr  map[string]error
	delErr  map[string]error
	// beforeAdd, when set, runs at the start of every ADD.
	beforeAdd func(sb podnet.Sandbox, a podnet.Attachment)

	calls []delegateCall
	added []podnet.Attachment
	dels  []podnet.Attachment

	checkErr  map[string]error
	statusErr error
	gcValid   map[string][]types.GCAttachment
	cached    []podnet.CachedAttachment
	rewrites  []string

	// statusConfig is the configuration the last STATUS was given.
	statusConfig []byte
	// gcConfig is the configuration each network's GC was given; gcErr fails
	// the GC of a network; cachedErr fails Cached; rewriteErr fails every
	// RewriteDefaultRoutes.
	gcConfig   map[string][]byte
	gcErr      map[string]error
	cachedErr  error
	rewriteErr error
	// beforeCached, when set, runs at the start of every Cached: what happens
	// concurrently between GC's reading of the records and of the cache.
	beforeCached func()
}

func (d *fakeDelegates) Add(_ context.Context, sb podnet.Sandbox, a podnet.Attachment) (types.Result, error) {
	if d.beforeAdd != nil {
		d.beforeAdd(sb, a)
	}
	d.calls = append(d.calls, delegateCall{"ADD", a.Network, a.IfName, sb.ContainerID, sb.NetNS})
	d.added = append(d.added, a)
	if err := d.addErr[a.Network]; err != nil {
		return nil, err
	}
	if r, ok := d.results[a.Network]; ok {
		return r, nil
	}
	return defaultResult(len(d.added), a.IfName, sb.NetNS), nil
}

func (d *fakeDelegates) Del(_ context.Context, sb podnet.Sandbox, a podnet.Attachment) error {
	d.calls = append(d.calls, delegateCall{"DEL", a.Network, a.IfName, sb.ContainerID, sb.NetNS})
	d.dels = append(d.dels, a)
	return d.delErr[a.Network]
}

// ops returns "OP network ifName" of every call, in order.
func (d *fakeDelegates) ops() []string {
	var out []string
	for _, c := range d.calls {
		out = append(out, c.Op+" "+c.Network+" "+c.IfName)
	}
	return out
}

// defaultResult is the fake delegates' result for the n-th ADD.
func defaultResult(n int, ifName, netns string) *current.Result {
	zero := 0
	return &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{{Name: ifName, Mac: fmt.Sprintf("02:00:00:00:00:%02x", n), Sandbox: netns}},
		IPs: []*current.IPConfig{{
			Interface: &zero,
			Address:   net.IPNet{IP: net.IPv4(10, 0, 0, byte(n)), Mask: net.CIDRMask(24, 32)},
			Gateway:   net.IPv4(10, 0, 0, 254),
		}},
	}
}

// testNow is the engine's clock in tests.
var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// newEngine builds an engine over the fakes and a real store in the conf's cniDir;
// kube nil means delegates-only mode.
func newEngine(kube *fakeKube, del *fakeDelegates, conf *config.PluginConf) *Engine {
	e := &Engine{
		Delegates: del,
		Records:   store.New(conf.CNIDir),
		Files:     hostfiles.Files{},
		Log:       slog.New(slog.DiscardHandler),
		Now:       func() time.Time { return testNow },
	}
	if kube != nil {
		e.Kube = kube
	}
	return e
}

// clusterDelegate is the inline cluster network of the tests.
const clusterDelegate = `{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"}`

// testConf parses a plugin configuration with config.ParsePlugin, so defaults
// apply, with cniDir and confDir under dir and the given cniVersion; extra is
// appended to the object's keys and must start with a comma, and must name the
// cluster network ("delegates" or "clusterNetwork").
func testConf(t *testing.T, dir, cniVersion, extra string) *config.PluginConf {
	t.Helper()
	text := fmt.Sprintf(`{"cniVersion":%q,"name":"multus","type":"multus","cniDir":%q,"confDir":%q%s}`,
		cniVersion, filepath.Join(dir, "cni"), filepath.Join(dir, "conf"), extra)
	conf, err := config.ParsePlugin([]byte(text))
	if err != nil {
		t.Fatalf("ParsePlugin(%s): %v", text, err)
	}
	return conf
}

// defaultConf is testConf with the inline cbr0 delegate and cniVersion 1.0.0.
func defaultConf(t *testing.T, dir, extra string) *config.PluginConf {
	t.Helper()
	return testConf(t, dir, "1.0.0", `,"delegates":[`+clusterDelegate+`]`+extra)
}

// podArgs are the CNI_ARGS of the test pod.
const podArgs = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-1;K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=uid-1"

// testNetNS is the sandbox's netns path.
const testNetNS = "/var/run/netns/c1"

// newRequest builds a request with request.FromEnv: container c1, CNI_IFNAME
// eth0, the netns only for ADD.
func newRequest(t *testing.T, command, cniArgs string) *request.Request {
	t.Helper()
	env := map[string]string{
		"CNI_CONTAINERID": "c1",
		"CNI_IFNAME":      "eth0",
		"CNI_PATH":        "/opt/cni/bin",
		"CNI_ARGS":        cniArgs,
	}
	if command == request.Add {
		env["CNI_NETNS"] = testNetNS
	}
	req, err := request.FromEnv(command, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	return req
}

// testPod is the pod podArgs name, selecting the given networks annotation.
func testPod(networks string) *podnet.Pod {
	p := &podnet.Pod{Namespace: "ns1", Name: "pod-1", UID: "uid-1", Annotations: map[string]string{}}
	if networks != "" {
		p.Annotations["k8s.v1.cni.cncf.io/networks"] = networks
	}
	return p
}

// standardKube is a cluster with the test pod selecting net-a and net-b, both
// existing in ns1.
func standardKube() *fakeKube {
	k := newFakeKube()
	k.addPod(testPod("net-a,net-b"))
	k.addNAD("ns1", "net-a", `{"cniVersion":"1.0.0","type":"macvlan","master":"eth1"}`)
	k.addNAD("ns1", "net-b", `{"cniVersion":"1.0.0","plugins":[{"type":"ipvlan"},{"type":"tuning"}]}`)
	return k
}

// Ready answers as told by readyErr.
func (k *fakeKube) Ready(context.Context) error { return k.readyErr }

// Check records a CHECK and fails as told by checkErr.
func (d *fakeDelegates) Check(_ context.Context, sb podnet.Sandbox, a podnet.Attachment) error {
	d.calls = append(d.calls, delegateCall{Op: "CHECK", Network: a.Network, IfName: a.IfName, ContainerID: sb.ContainerID, NetNS: sb.NetNS})
	return d.checkErr[a.Network]
}

// Status records a STATUS and fails as told by statusErr.
func (d *fakeDelegates) Status(_ context.Context, network string, config []byte) error {
	d.calls = append(d.calls, delegateCall{Op: "STATUS", Network: network})
	d.statusConfig = config
	return d.statusErr
}

// GC records the valid attachments and the configuration each network's GC was
// given, and fails as told by gcErr.
func (d *fakeDelegates) GC(_ context.Context, network string, config []byte, valid []types.GCAttachment) error {
	if d.gcValid == nil {
		d.gcValid = map[string][]types.GCAttachment{}
	}
	if d.gcConfig == nil {
		d.gcConfig = map[string][]byte{}
	}
	d.gcValid[network] = valid
	d.gcConfig[network] = config
	return d.gcErr[network]
}

// Cached returns the scripted cache entries, or cachedErr.
func (d *fakeDelegates) Cached() ([]podnet.CachedAttachment, error) {
	if d.beforeCached != nil {
		d.beforeCached()
	}
	return d.cached, d.cachedErr
}

// RewriteDefaultRoutes records the edit and fails as told by rewriteErr.
func (d *fakeDelegates) RewriteDefaultRoutes(_ podnet.Sandbox, a podnet.Attachment, families []int, gateways []net.IP) error {
	d.rewrites = append(d.rewrites, fmt.Sprintf("%s %v %v", a.IfName, families, gateways))
	return d.rewriteErr
}

// fakeRoutes records default-route changes as "DEL <netns> <if> <family>" and
// "ADD <netns> <if> <gw>", in order, and fails the calls it is told to, keyed by
// the recorded text without the netns ("DEL net1 4", "ADD net1 10.1.1.1").
type fakeRoutes struct {
	calls []string
	fail  map[string]error
}

func (r *fakeRoutes) DeleteDefault(netns, ifName string, family int) ([]net.IP, error) {
	key := fmt.Sprintf("DEL %s %d", ifName, family)
	r.calls = append(r.calls, netns+" "+key)
	return nil, r.fail[key]
}

func (r *fakeRoutes) AddDefault(netns, ifName string, gw net.IP) error {
	key := fmt.Sprintf("ADD %s %s", ifName, gw)
	r.calls = append(r.calls, netns+" "+key)
	return r.fail[key]
}

// fakeDevices is a DeviceSource returning ids and counting calls.
type fakeDevices struct {
	ids   map[string][]string
	calls int
}

func (f *fakeDevices) DeviceIDs(context.Context, podnet.PodRef) (map[string][]string, error) {
	f.calls++
	return f.ids, nil
}

// diskRecords is the engine's records as the store on disk, for tests that
// corrupt a record file.
func diskRecords(e *Engine) store.Store { return e.Records.(store.Store) }
