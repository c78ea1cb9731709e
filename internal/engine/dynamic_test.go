package engine

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
)

// dynamicFixture is a sandbox of the test pod added with the networks
// annotation given, its netns present.
type dynamicFixture struct {
	t    *testing.T
	e    *Engine
	kube *fakeKube
	del  *fakeDelegates
}

func newDynamicFixture(t *testing.T, networks string) *dynamicFixture {
	t.Helper()
	kube := standardKube()
	kube.addPod(testPod(networks))
	del := &fakeDelegates{}
	conf := defaultConf(t, t.TempDir(), "")
	e := newEngine(kube, del, conf)
	filesOf(e).put(testNetNS, nil)
	if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
		t.Fatal(err)
	}
	return &dynamicFixture{t: t, e: e, kube: kube, del: del}
}

// change reconciles the sandbox with the pod's annotation set to networks and
// its network-status as last written, and returns what changed, the delegate
// calls and event reasons it made, and the error.
func (f *dynamicFixture) change(networks string) (Reconciled, []string, []string, error) {
	f.t.Helper()
	pod := testPod(networks)
	if n := len(f.kube.patches); n > 0 {
		pod.Annotations[netstatus.Annotation] = f.kube.patches[n-1].Value
	}
	calls, events := len(f.del.calls), len(f.kube.events)
	conf := defaultConf(f.t, f.t.TempDir(), "")
	done, err := f.e.Reconcile(f.t.Context(), conf, "c1", pod)
	return done, f.del.ops()[calls:], f.kube.reasons()[events:], err
}

// status is the last network-status written, as "interface network".
func (f *dynamicFixture) status() []string {
	f.t.Helper()
	entries, err := netstatus.Decode(f.kube.patches[len(f.kube.patches)-1].Value)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, en := range entries {
		out = append(out, en.Interface+" "+en.Name)
	}
	return out
}

// recorded are the record's interfaces.
func (f *dynamicFixture) recorded() []string {
	f.t.Helper()
	rec, err := f.e.Records.Load("c1")
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, a := range rec.Attachments {
		out = append(out, a.IfName)
	}
	return out
}

// TestReconcileAddThenRemove: a running pod gains a network, then loses the
// first one; the other keeps its interface; record, network-status, delegate
// calls and events follow each step, and the cluster network is never touched.
func TestReconcileAddThenRemove(t *testing.T) {
	f := newDynamicFixture(t, "net-a")
	done, ops, events, err := f.change("net-a,net-b")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Reconciled{Added: []string{"net2"}}, done); diff != "" {
		t.Errorf("added (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ADD ns1/net-b net2"}, ops); diff != "" {
		t.Errorf("delegate calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Normal/AddedInterface"}, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"eth0 cbr0", "net1 ns1/net-a", "net2 ns1/net-b"}, f.status()); diff != "" {
		t.Errorf("network-status (-want +got):\n%s", diff)
	}

	done, ops, events, err = f.change("net-b")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Reconciled{Removed: []string{"net1"}}, done); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"DEL ns1/net-a net1"}, ops); diff != "" {
		t.Errorf("delegate calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Normal/RemovedInterface"}, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"eth0 cbr0", "net2 ns1/net-b"}, f.status()); diff != "" {
		t.Errorf("network-status (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"eth0", "net2"}, f.recorded()); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}

	// Added back, net-a gets its old name; nothing else moves.
	done, ops, _, err = f.change("net-a,net-b")
	if err != nil || !cmp.Equal(Reconciled{Added: []string{"net1"}}, done) || !cmp.Equal([]string{"ADD ns1/net-a net1"}, ops) {
		t.Errorf("re-adding: %+v %v %v, want net1 added", done, ops, err)
	}

	// The sandbox's DEL tears down what it has now.
	calls := len(f.del.calls)
	if err := f.e.Del(t.Context(), newRequest(t, request.Del, podArgs), defaultConf(t, t.TempDir(), "")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"DEL ns1/net-a net1", "DEL ns1/net-b net2", "DEL cbr0 eth0"}, f.del.ops()[calls:]); diff != "" {
		t.Errorf("DEL after changes (-want +got):\n%s", diff)
	}
}

// TestReconcileFailedAttachRollsBack: a network that fails to attach is torn
// down again and leaves the record as it was; the error is returned for the
// caller to try again, and an event says why. A network that does not exist
// is reported as upstream reports it.
func TestReconcileFailedAttachRollsBack(t *testing.T) {
	f := newDynamicFixture(t, "net-a")
	f.del.addErr = map[string]error{"ns1/net-b": errors.New("no more addresses")}
	done, ops, events, err := f.change("net-a,net-b")
	var aerr *AttachError
	if !errors.As(err, &aerr) || aerr.Network != "ns1/net-b" {
		t.Fatalf("Reconcile = %v, want an *AttachError of ns1/net-b", err)
	}
	if len(done.Added)+len(done.Removed) != 0 {
		t.Errorf("changed %+v, want nothing", done)
	}
	if diff := cmp.Diff([]string{"ADD ns1/net-b net2", "DEL ns1/net-b net2"}, ops); diff != "" {
		t.Errorf("delegate calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Warning/NetworkAttachmentFailed"}, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"eth0", "net1"}, f.recorded()); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}

	_, ops, events, err = f.change("net-a,missing")
	if err == nil || len(ops) != 0 {
		t.Errorf("missing NAD: %v, calls %v; want an error and no call", err, ops)
	}
	if diff := cmp.Diff([]string{"Warning/NoNetworkFound"}, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestReconcileLeavesAlone: an invalid annotation changes nothing (an event
// says why, and a *SelectionError says retrying cannot help); a sandbox without
// a record, of another pod, or whose netns is gone, is not touched.
func TestReconcileLeavesAlone(t *testing.T) {
	f := newDynamicFixture(t, "net-a")
	_, ops, events, err := f.change(`[{"name":"net-b"`)
	var serr *SelectionError
	if !errors.As(err, &serr) || len(ops) != 0 {
		t.Errorf("invalid annotation: %v, calls %v; want a *SelectionError and no call", err, ops)
	}
	if diff := cmp.Diff([]string{"Warning/InvalidNetworkSelection"}, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	conf := defaultConf(t, t.TempDir(), "")
	other := testPod("")
	other.UID = "uid-2"
	for name, run := range map[string]func() (Reconciled, error){
		"no record":   func() (Reconciled, error) { return f.e.Reconcile(t.Context(), conf, "c2", testPod("")) },
		"another pod": func() (Reconciled, error) { return f.e.Reconcile(t.Context(), conf, "c1", other) },
		"pod being deleted": func() (Reconciled, error) {
			p := testPod("")
			p.Deleting = true
			return f.e.Reconcile(t.Context(), conf, "c1", p)
		},
		"netns is gone": func() (Reconciled, error) {
			_ = filesOf(f.e).RemoveDeviceInfo(testNetNS)
			return f.e.Reconcile(t.Context(), conf, "c1", testPod(""))
		},
	} {
		calls := len(f.del.calls)
		if done, err := run(); err != nil || len(done.Added)+len(done.Removed) > 0 || len(f.del.calls) != calls {
			t.Errorf("%s: %+v, %v, calls %v; want nothing done", name, done, err, f.del.ops()[calls:])
		}
	}
	if diff := cmp.Diff([]string{"eth0", "net1"}, f.recorded()); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
}

// TestReconcileKeepsDefaultNetworks: attachments the annotation did not ask
// for (the cluster network, a default network) stay when it is emptied.
func TestReconcileKeepsDefaultNetworks(t *testing.T) {
	f := newDynamicFixture(t, "net-a")
	rec, _ := f.e.Records.Load("c1")
	rec.Attachments = append(rec.Attachments, podnet.Attachment{Network: "kube-system/extra", IfName: "net7"})
	if err := f.e.Records.Save(rec); err != nil {
		t.Fatal(err)
	}
	_, ops, _, err := f.change("")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"DEL ns1/net-a net1"}, ops); diff != "" {
		t.Errorf("delegate calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"eth0", "net7"}, f.recorded()); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
}

// TestReconcileRepairsStatus: a network-status write that fails leaves the
// interfaces in place and the error returned, for the caller to try again;
// trying again with nothing left to change writes the status the record
// says, from the results in the delegates' cache: an added interface's
// entry comes, a removed one's goes.
func TestReconcileRepairsStatus(t *testing.T) {
	f := newDynamicFixture(t, "net-a")
	failWrite := func(networks string) {
		t.Helper()
		f.kube.patchErr = errors.New("the API server is away")
		if _, _, _, err := f.change(networks); err == nil {
			t.Fatalf("%s: Reconcile succeeded although the status write failed", networks)
		}
		f.kube.patches = f.kube.patches[:len(f.kube.patches)-1] // never written
		f.kube.patchErr = nil
	}
	failWrite("net-a,net-b")
	if diff := cmp.Diff([]string{"eth0", "net1", "net2"}, f.recorded()); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	done, ops, _, err := f.change("net-a,net-b")
	if err != nil || len(ops) != 0 || len(done.Added)+len(done.Removed) != 0 {
		t.Fatalf("retry: %+v, calls %v, %v; want no change and no error", done, ops, err)
	}
	if diff := cmp.Diff([]string{"eth0 cbr0", "net1 ns1/net-a", "net2 ns1/net-b"}, f.status()); diff != "" {
		t.Errorf("repaired network-status (-want +got):\n%s", diff)
	}
	entries, _ := netstatus.Decode(f.kube.patches[len(f.kube.patches)-1].Value)
	if len(entries) != 3 || len(entries[2].IPs) != 1 {
		t.Errorf("the repaired entry of net2 has no address from its cached result: %+v", entries)
	}

	failWrite("net-a")
	patches := len(f.kube.patches)
	if _, _, _, err := f.change("net-a"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"eth0 cbr0", "net1 ns1/net-a"}, f.status()); diff != "" {
		t.Errorf("repaired network-status (-want +got):\n%s", diff)
	}
	// In step now: nothing more is written.
	if _, _, _, err := f.change("net-a"); err != nil || len(f.kube.patches) != patches+1 {
		t.Errorf("a status in step was written again (%d patches, want %d): %v", len(f.kube.patches), patches+1, err)
	}
}
