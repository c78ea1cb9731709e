package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/engine/attach"
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

func (k *fakeKube) Pod(_ context.Context, ref podnet.PodRef) (*podnet.Pod, error) {
	k.podReads++
	if k.podErr != nil {
		return nil, k.podErr
	}
	if p, ok := k.pods[ref.Namespace+"/"+ref.Name]; ok {
		return p, nil
	}
	return nil, &podnet.NotFoundError{Kind: "Pod", Namespace: ref.Namespace, Name: ref.Name}
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

// newEngine builds an engine over the fakes, with an empty fakeRecords,
// fakeFiles and fakeConfs (reach them with recordsOf, filesOf and confsOf);
// kube nil means delegates-only mode. The configuration is the test's, unused
// here: nothing of the engine's touches its folders.
func newEngine(kube *fakeKube, del *fakeDelegates, _ *config.PluginConf) *Engine {
	e := &Engine{
		Delegates: del,
		Confs:     fakeConfs{},
		Records:   newFakeRecords(),
		Files:     newFakeFiles(),
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
// Result answers with the result of the attachment's last ADD.
func (d *fakeDelegates) Result(sb podnet.Sandbox, a podnet.Attachment) (types.Result, error) {
	for i := len(d.added) - 1; i >= 0; i-- {
		if d.added[i].IfName == a.IfName && d.added[i].Network == a.Network {
			if r, ok := d.results[a.Network]; ok {
				return r, nil
			}
			return defaultResult(i+1, a.IfName, sb.NetNS), nil
		}
	}
	return nil, errors.New("no result cached")
}

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

func (f *fakeDevices) DeviceIDs(context.Context, *podnet.Pod) (map[string][]string, error) {
	f.calls++
	return f.ids, nil
}

// The fakes implement the engine's ports.
var (
	_ Records           = (*fakeRecords)(nil)
	_ Files             = (*fakeFiles)(nil)
	_ attach.ConfSource = fakeConfs(nil)
)

// recordsOf is the engine's fakeRecords.
func recordsOf(e *Engine) *fakeRecords { return e.Records.(*fakeRecords) }

// filesOf is the engine's fakeFiles.
func filesOf(e *Engine) *fakeFiles { return e.Files.(*fakeFiles) }

// confsOf is the engine's fakeConfs.
func confsOf(e *Engine) fakeConfs { return e.Confs.(fakeConfs) }

// fakeConfs is the Confs port over a map from a file's path to its content,
// so engine tests need no disk: Find answers with the first file of the
// folder, in path order, whose "name" matches (the node's rules, conflists
// first among them, are the adapter's and tested there); Load reads one file;
// no network has plugin folders.
type fakeConfs map[string]string

func (f fakeConfs) Find(dir, name string) ([]byte, string, error) {
	for _, path := range slices.Sorted(maps.Keys(f)) {
		var c struct{ Name string }
		if filepath.Dir(path) == dir && json.Unmarshal([]byte(f[path]), &c) == nil && c.Name == name {
			return []byte(f[path]), path, nil
		}
	}
	return nil, "", nil
}

func (f fakeConfs) Load(path string) ([]byte, string, error) {
	data, ok := f[path]
	if !ok {
		return nil, "", notExist("open", path)
	}
	return []byte(data), path, nil
}

func (fakeConfs) Plugins(string, string) ([]json.RawMessage, error) { return nil, nil }

// corruptRecordError stands for the error Records returns for a record that
// exists but cannot be trusted (package store's *CorruptError: truncated,
// altered, empty, another container's): it carries the CNI code
// cnicode.RecordCorrupt. Detecting the corruption is the store's own test; the
// engine's tests inject this error and check what the engine does with it.
type corruptRecordError struct {
	ContainerID string
	Reason      string
}

func (e *corruptRecordError) Error() string {
	return fmt.Sprintf("attachment record of %s is corrupt (%s); it was kept for inspection, and nothing was torn down from it", e.ContainerID, e.Reason)
}

func (e *corruptRecordError) CNICode() uint { return cnicode.RecordCorrupt }

// fakeRecords is an in-memory Records. Each record is kept as a deep copy (a
// JSON round trip, like the store's file), so what a test loads is what was
// saved, never the engine's live value. A missing record is an error matching
// fs.ErrNotExist; loadErr makes a record exist but fail to load, as the store
// does for one it cannot trust. Lock takes nothing but logs in trace, with every
// other call, so tests can see what happened under which lock. It is safe for
// concurrent use.
type fakeRecords struct {
	mu      sync.Mutex
	records map[string]*podnet.Record
	// loadErr holds, per container ID, the error Load returns for a record
	// that exists but cannot be read (see corruptRecordError); List lists it,
	// Remove and Save replace it.
	loadErr map[string]error
	// legacy holds upstream Multus's cache per container ID as LoadLegacy
	// returns it; legacyErr fails LoadLegacy per container ID (a damaged
	// cache).
	legacy    map[string][]podnet.Attachment
	legacyErr map[string]error
	// lockErr, saveErr, removeErr and listErr fail every call of their method.
	lockErr, saveErr, removeErr, listErr error

	// trace logs every call in order: "lock shared", "lock exclusive",
	// "unlock shared", "unlock exclusive", "save <id>", "load <id>",
	// "remove <id>", "list", "load-legacy <id> <ifName>", "remove-legacy <id>",
	// "lock sandbox <id>", "unlock sandbox <id>".
	trace []string
	// shared and exclusive count the locks held now; sandboxes counts the
	// sandbox locks held now, by container ID (LockSandbox).
	shared, exclusive int
	sandboxes         map[string]int
}

func newFakeRecords() *fakeRecords {
	return &fakeRecords{
		records:   map[string]*podnet.Record{},
		loadErr:   map[string]error{},
		legacy:    map[string][]podnet.Attachment{},
		legacyErr: map[string]error{},
	}
}

// notExist is the error of a missing record or file, as the file system gives
// it.
func notExist(op, path string) error {
	return &fs.PathError{Op: op, Path: path, Err: fs.ErrNotExist}
}

// copyRecord deep-copies a record through JSON, as the store's file does.
func copyRecord(rec *podnet.Record) (*podnet.Record, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	var out podnet.Record
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (r *fakeRecords) log(op string) { r.trace = append(r.trace, op) }

func (r *fakeRecords) Lock(exclusive bool) (func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	how := "shared"
	if exclusive {
		how = "exclusive"
	}
	r.log("lock " + how)
	if r.lockErr != nil {
		return nil, r.lockErr
	}
	if exclusive {
		r.exclusive++
	} else {
		r.shared++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.log("unlock " + how)
			if exclusive {
				r.exclusive--
			} else {
				r.shared--
			}
		})
	}, nil
}

// LockSandbox logs "lock sandbox <id>" and "unlock sandbox <id>" in trace and
// counts the lock in sandboxes while it is held; it excludes nothing.
func (r *fakeRecords) LockSandbox(containerID string) (func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log("lock sandbox " + containerID)
	if r.lockErr != nil {
		return nil, r.lockErr
	}
	if r.sandboxes == nil {
		r.sandboxes = map[string]int{}
	}
	r.sandboxes[containerID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.log("unlock sandbox " + containerID)
			r.sandboxes[containerID]--
		})
	}, nil
}

// sandboxHeld reports whether the sandbox lock of containerID is held now.
func (r *fakeRecords) sandboxHeld(containerID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sandboxes[containerID] > 0
}

func (r *fakeRecords) Save(rec *podnet.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log("save " + rec.ContainerID)
	if r.saveErr != nil {
		return r.saveErr
	}
	c, err := copyRecord(rec)
	if err != nil {
		return err
	}
	r.records[rec.ContainerID] = c
	delete(r.loadErr, rec.ContainerID)
	return nil
}

func (r *fakeRecords) Load(containerID string) (*podnet.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log("load " + containerID)
	if err := r.loadErr[containerID]; err != nil {
		return nil, err
	}
	rec, ok := r.records[containerID]
	if !ok {
		return nil, notExist("open", containerID+".json")
	}
	return copyRecord(rec)
}

func (r *fakeRecords) Remove(containerID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log("remove " + containerID)
	if r.removeErr != nil {
		return r.removeErr
	}
	delete(r.records, containerID)
	delete(r.loadErr, containerID)
	return nil
}

// List returns the container IDs of the records, readable or not, sorted as the
// store's folder listing is.
func (r *fakeRecords) List() ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log("list")
	if r.listErr != nil {
		return nil, r.listErr
	}
	ids := slices.Collect(maps.Keys(r.records))
	for id := range r.loadErr {
		if _, ok := r.records[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// LoadLegacy returns a copy of the attachments seeded in legacy, as given: the
// conversion of upstream's file is the store's.
func (r *fakeRecords) LoadLegacy(containerID, ifName string) ([]podnet.Attachment, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log("load-legacy " + containerID + " " + ifName)
	if err := r.legacyErr[containerID]; err != nil {
		return nil, err
	}
	atts, ok := r.legacy[containerID]
	if !ok {
		return nil, notExist("open", containerID)
	}
	c, err := copyRecord(&podnet.Record{Attachments: atts})
	if err != nil {
		return nil, err
	}
	return c.Attachments, nil
}

func (r *fakeRecords) RemoveLegacy(containerID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log("remove-legacy " + containerID)
	delete(r.legacy, containerID)
	delete(r.legacyErr, containerID)
	return nil
}

// corrupt makes the record of containerID exist but fail to load with a
// *corruptRecordError giving reason, and returns that error.
func (r *fakeRecords) corrupt(containerID, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := &corruptRecordError{ContainerID: containerID, Reason: reason}
	r.loadErr[containerID] = err
	return err
}

// has reports whether a record of containerID exists, readable or not.
func (r *fakeRecords) has(containerID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.records[containerID]
	_, bad := r.loadErr[containerID]
	return ok || bad
}

// ops returns a copy of trace.
func (r *fakeRecords) ops() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.trace)
}

// held returns the number of shared and exclusive locks held now.
func (r *fakeRecords) held() (shared, exclusive int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.shared, r.exclusive
}

// fakeFiles is an in-memory Files: a map from path to content, with the
// semantics of package hostfiles (a missing device plugin file is no error to
// copy, one that is not JSON is; device-info is read compacted, a missing file
// reads as nil; a missing file is no error to remove). Folders do not exist: a
// path is there or not. It is safe for concurrent use, so a test can create a
// file while the engine waits for it.
type fakeFiles struct {
	mu    sync.Mutex
	files map[string][]byte
	// fail makes every operation on the path fail with the error, as an
	// unreadable file or folder would.
	fail map[string]error
	// missed, when set, receives, without blocking, the path of every Exists
	// that found nothing: how a test learns that the engine waits.
	missed chan string
}

func newFakeFiles() *fakeFiles {
	return &fakeFiles{files: map[string][]byte{}, fail: map[string]error{}}
}

// put creates or replaces the file at path.
func (f *fakeFiles) put(path string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = bytes.Clone(data)
}

// get returns the file at path and whether it exists.
func (f *fakeFiles) get(path string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, ok := f.files[path]
	return bytes.Clone(data), ok
}

func (f *fakeFiles) Exists(path string) error {
	f.mu.Lock()
	err := f.fail[path]
	_, ok := f.files[path]
	missed := f.missed
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	if missed != nil {
		select {
		case missed <- path:
		default:
		}
	}
	return notExist("stat", path)
}

func (f *fakeFiles) CopyDeviceInfo(src, dst string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[src]; err != nil {
		return fmt.Errorf("device-info file: %w", err)
	}
	data, ok := f.files[src]
	if !ok {
		return nil
	}
	if !json.Valid(data) {
		return fmt.Errorf("device-info file %s is not JSON", src)
	}
	if err := f.fail[dst]; err != nil {
		return fmt.Errorf("device-info file: %w", err)
	}
	f.files[dst] = bytes.Clone(data)
	return nil
}

func (f *fakeFiles) ReadDeviceInfo(path string) (json.RawMessage, error) {
	if path == "" {
		return nil, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[path]; err != nil {
		return nil, err
	}
	data, ok := f.files[path]
	if !ok {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, fmt.Errorf("device-info file %s: %w", path, err)
	}
	return buf.Bytes(), nil
}

func (f *fakeFiles) RemoveDeviceInfo(path string) error {
	if path == "" {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[path]; err != nil {
		return err
	}
	delete(f.files, path)
	return nil
}
