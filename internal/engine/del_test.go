package engine

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
)

// reverseDels are the delegate DELs of the standard pod, in the order DEL runs
// them.
var reverseDels = []string{"DEL ns1/net-b net2", "DEL ns1/net-a net1", "DEL cbr0 eth0"}

// TestDelFromRecord proves R-7.2b and the record's purpose: DEL tears down every
// attachment from the record, in reverse order, with the exact recorded
// attachments, needing neither the pod, its NADs, the netns nor the API; the
// record is removed afterwards.
func TestDelFromRecord(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	kube := standardKube()
	del := &fakeDelegates{}
	e := newEngine(kube, del, conf)
	if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
		t.Fatalf("Add: %v", err)
	}
	rec, err := e.Records.Load("c1")
	if err != nil {
		t.Fatalf("record after ADD: %v", err)
	}

	// The pod, its NADs and the API all go away; DEL still knows everything.
	kube.pods, kube.nads = map[string]*podnet.Pod{}, map[string]*podnet.NAD{}
	kube.podErr = errors.New("API server unreachable")
	del.calls, del.dels = nil, nil
	if err := e.Del(t.Context(), newRequest(t, request.Del, podArgs), conf); err != nil {
		t.Fatalf("Del: %v", err)
	}
	if diff := cmp.Diff(reverseDels, del.ops()); diff != "" {
		t.Errorf("delegate calls (-want +got):\n%s", diff)
	}
	want := slices.Clone(rec.Attachments)
	slices.Reverse(want)
	if diff := cmp.Diff(want, del.dels); diff != "" {
		t.Errorf("DEL attachments differ from the record's (-record +got):\n%s", diff)
	}
	for _, c := range del.calls {
		if c.ContainerID != "c1" || c.NetNS != "" {
			t.Errorf("DEL of %s in sandbox %q netns %q, want c1 and the request's empty netns", c.Network, c.ContainerID, c.NetNS)
		}
	}
	if kube.podReads != 1 {
		t.Errorf("DEL read the pod %d more times; it must work from the record alone", kube.podReads-1)
	}
	if _, err := e.Records.Load("c1"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("record after a successful DEL: Load error = %v, want not exist", err)
	}
}

// TestDelContinuesAfterFailure proves R-7.2b: one failed DEL does not stop the
// others, every failure is returned in a *DetachError (delegate codes reachable),
// and the record is kept so a retried DEL finishes the job and then removes it.
func TestDelContinuesAfterFailure(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	del := &fakeDelegates{}
	e := newEngine(standardKube(), del, conf)
	if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
		t.Fatalf("Add: %v", err)
	}
	del.calls = nil
	del.delErr = map[string]error{
		"ns1/net-b": &types.Error{Code: types.ErrTryAgainLater, Msg: "device busy"},
		"cbr0":      errors.New("bridge plugin crashed"),
	}
	err := e.Del(t.Context(), newRequest(t, request.Del, podArgs), conf)
	if diff := cmp.Diff(reverseDels, del.ops()); diff != "" {
		t.Errorf("delegate calls (-want +got):\n%s", diff)
	}
	var de *DetachError
	if !errors.As(err, &de) {
		t.Fatalf("Del error = %v, want *DetachError", err)
	}
	if de.ContainerID != "c1" || len(de.Failed) != 2 {
		t.Errorf("DetachError for %q with %d failures, want c1 with 2: %v", de.ContainerID, len(de.Failed), de)
	}
	var te *types.Error
	if !errors.As(err, &te) || te.Code != types.ErrTryAgainLater {
		t.Errorf("the delegate's *types.Error is not reachable through %v", err)
	}
	for _, s := range []string{`"ns1/net-b"`, "net2", "device busy", `"cbr0"`, "eth0", "bridge plugin crashed"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
	if strings.Contains(err.Error(), `"ns1/net-a"`) {
		t.Errorf("error %q mentions ns1/net-a, whose DEL succeeded", err)
	}
	if _, err := e.Records.Load("c1"); err != nil {
		t.Errorf("record removed after a failed DEL: %v", err)
	}

	// The retry succeeds and removes the record.
	del.calls, del.delErr = nil, nil
	if err := e.Del(t.Context(), newRequest(t, request.Del, podArgs), conf); err != nil {
		t.Fatalf("retried Del: %v", err)
	}
	if diff := cmp.Diff(reverseDels, del.ops()); diff != "" {
		t.Errorf("retried DEL calls (-want +got):\n%s", diff)
	}
	if _, err := e.Records.Load("c1"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("record after the retried DEL: Load error = %v, want not exist", err)
	}
}

// TestDelTwice proves that a second DEL, with no record left and the pod gone,
// succeeds without calling any delegate.
func TestDelTwice(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	kube := standardKube()
	del := &fakeDelegates{}
	e := newEngine(kube, del, conf)
	if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := e.Del(t.Context(), newRequest(t, request.Del, podArgs), conf); err != nil {
		t.Fatalf("first Del: %v", err)
	}
	delete(kube.pods, "ns1/pod-1")
	del.calls = nil
	if err := e.Del(t.Context(), newRequest(t, request.Del, podArgs), conf); err != nil {
		t.Errorf("second Del: %v", err)
	}
	if len(del.calls) != 0 {
		t.Errorf("second DEL called delegates: %v", del.ops())
	}
}

// TestDelCorruptRecord proves that a record that cannot be trusted fails the DEL
// with the records' error, its CNI code and the sandbox and pod named, calls no
// delegate (tearing down from a guess could release what belongs to another
// sandbox) and keeps the record for inspection. Each case is one way the store
// finds a record corrupt (its own tests prove it does); here it is injected.
func TestDelCorruptRecord(t *testing.T) {
	tests := []struct {
		name   string
		reason string
	}{
		{name: "truncated", reason: "does not decode: unexpected EOF"},
		{name: "altered", reason: "checksum mismatch"},
		{name: "empty", reason: "does not decode: EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := defaultConf(t, dir, "")
			del := &fakeDelegates{}
			e := newEngine(standardKube(), del, conf)
			if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
				t.Fatalf("Add: %v", err)
			}
			injected := recordsOf(e).corrupt("c1", tt.reason)
			del.calls = nil
			err := e.Del(t.Context(), newRequest(t, request.Del, podArgs), conf)
			if !errors.Is(err, injected) {
				t.Fatalf("Del error = %v, want the records' %v", err, injected)
			}
			var coder cnicode.Coder
			if !errors.As(err, &coder) || coder.CNICode() != cnicode.RecordCorrupt {
				t.Errorf("CNI code of %v = %v, want %d", err, coder, cnicode.RecordCorrupt)
			}
			for _, s := range []string{"c1", "ns1/pod-1", tt.reason} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
			if len(del.calls) != 0 {
				t.Errorf("delegates ran from a corrupt record: %v", del.ops())
			}
			if !recordsOf(e).has("c1") {
				t.Error("the corrupt record was not kept")
			}
		})
	}
}

// TestDelLegacyCache proves DEL of a sandbox that upstream Multus attached
// before an upgrade: with no record of ours, upstream's cache of the sandbox is
// read with the runtime's interface name and every attachment in it gets a DEL,
// in reverse, with the request's CNI_ARGS, the cluster network with the
// runtime's capability arguments and a configuration without cniVersion with
// ours; the pod is not resolved again, and the cache goes when every DEL
// succeeded. A failed DEL, or a cache that cannot be trusted, keeps it.
func TestDelLegacyCache(t *testing.T) {
	legacy := []podnet.Attachment{
		{Network: "cbr0", IfName: "eth0", Default: true, Config: []byte(`{"name":"cbr0","type":"bridge"}`)},
		{Network: "ns1/net-a", IfName: "net1", Config: []byte(`{"cniVersion":"0.4.0","name":"net-a","type":"macvlan"}`),
			CapabilityArgs: map[string]json.RawMessage{"mac": json.RawMessage(`"c2:00:00:00:00:01"`)}},
	}
	tests := []struct {
		name     string
		failDel  string
		corrupt  bool
		wantOps  []string
		wantKept bool
	}{
		{name: "torn down in reverse, the cache removed", wantOps: []string{"DEL ns1/net-a net1", "DEL cbr0 eth0"}},
		{name: "R-7.2b a failed DEL keeps the cache", failDel: "cbr0", wantOps: []string{"DEL ns1/net-a net1", "DEL cbr0 eth0"}, wantKept: true},
		{name: "a cache that cannot be trusted tears nothing down", corrupt: true, wantKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := defaultConf(t, dir, `,"runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":8080,"protocol":"tcp"}]}`)
			kube := standardKube()
			del := &fakeDelegates{delErr: map[string]error{}}
			if tt.failDel != "" {
				del.delErr[tt.failDel] = errors.New("DEL failed")
			}
			e := newEngine(kube, del, conf)
			recs := recordsOf(e)
			recs.legacy["c1"] = legacy
			var injected error
			if tt.corrupt {
				injected = &corruptRecordError{ContainerID: "c1", Reason: "upstream cache does not decode"}
				recs.legacyErr["c1"] = injected
			}
			err := e.Del(t.Context(), newRequest(t, request.Del, podArgs), conf)
			if diff := cmp.Diff(tt.wantOps, del.ops()); diff != "" {
				t.Errorf("delegate calls (-want +got):\n%s", diff)
			}
			if kube.podReads != 0 {
				t.Errorf("DEL read the pod %d times; upstream's cache says what to undo", kube.podReads)
			}
			ops := recs.ops()
			if !slices.Contains(ops, "load-legacy c1 eth0") {
				t.Errorf("records calls %v, want upstream's cache of c1 read with the runtime's eth0", ops)
			}
			if removed := slices.Contains(ops, "remove-legacy c1"); removed == tt.wantKept {
				t.Errorf("upstream's cache removed = %v, want %v (records calls %v)", removed, !tt.wantKept, ops)
			}
			switch {
			case tt.corrupt:
				var coder cnicode.Coder
				if !errors.Is(err, injected) || !errors.As(err, &coder) || coder.CNICode() != cnicode.RecordCorrupt {
					t.Errorf("Del error = %v, want the records' %v with its code", err, injected)
				}
				return
			case tt.failDel != "":
				var de *DetachError
				if !errors.As(err, &de) || len(de.Failed) != 1 {
					t.Errorf("Del error = %v, want a *DetachError with one failure", err)
				}
				return
			case err != nil:
				t.Fatalf("Del: %v", err)
			}
			if len(del.dels) != 2 {
				t.Fatalf("%d DELs, want 2", len(del.dels))
			}
			cluster, netA := del.dels[1], del.dels[0]
			if diff := cmp.Diff(conf.RuntimeConfig, cluster.CapabilityArgs); diff != "" {
				t.Errorf("cluster network's capability arguments (-runtime +got):\n%s", diff)
			}
			if diff := cmp.Diff(legacy[1].CapabilityArgs, netA.CapabilityArgs); diff != "" {
				t.Errorf("net-a's capability arguments (-cache +got):\n%s", diff)
			}
			var clusterConf map[string]any
			if err := json.Unmarshal(cluster.Config, &clusterConf); err != nil || clusterConf["cniVersion"] != "1.0.0" {
				t.Errorf("cluster network's configuration %s, want ours, cniVersion 1.0.0, added", cluster.Config)
			}
			if string(netA.Config) != string(legacy[1].Config) {
				t.Errorf("net-a's configuration %s, want the cache's %s unchanged", netA.Config, legacy[1].Config)
			}
			for _, a := range del.dels {
				if got, _ := request.Args(a.CNIArgs).Get("K8S_POD_NAME"); got != "pod-1" {
					t.Errorf("DEL of %s had CNI_ARGS %v, want the request's", a.Network, a.CNIArgs)
				}
			}
		})
	}
}

// TestDelWithoutRecord proves DEL of a sandbox with no record (a record lost, or
// attached before an upgrade): the attachments are resolved again when possible,
// from the pod in the API or the inline delegates, and deleted in reverse; when
// the selected networks no longer resolve, the cluster network still is; when
// the pod cannot be known there is nothing of ours to undo and DEL succeeds.
func TestDelWithoutRecord(t *testing.T) {
	tests := []struct {
		name     string
		conf     string // extra keys; the inline cbr0 delegate when empty
		kube     func() *fakeKube
		args     string
		failDel  string
		wantOps  []string
		wantFail bool
	}{
		{
			name:    "R-7.2b pod present: its attachments are resolved and deleted in reverse",
			kube:    standardKube,
			wantOps: reverseDels,
		},
		{
			name: "selected networks that no longer resolve leave the cluster network",
			kube: func() *fakeKube {
				k := standardKube()
				delete(k.nads, "ns1/net-b")
				return k
			},
			wantOps: []string{"DEL cbr0 eth0"},
		},
		{
			name: "an invalid annotation leaves the cluster network",
			conf: `,"strictNetworkSelection":true`,
			kube: func() *fakeKube {
				k := standardKube()
				k.addPod(testPod(`[{"name":"net-a","mac":"bogus"}]`))
				return k
			},
			wantOps: []string{"DEL cbr0 eth0"},
		},
		{
			name:    "no pod: nothing to undo",
			kube:    newFakeKube,
			wantOps: nil,
		},
		{
			name: "a recreated pod (UID mismatch) is not ours: nothing to undo",
			kube: func() *fakeKube {
				k := standardKube()
				k.pods["ns1/pod-1"].UID = "recreated-uid"
				return k
			},
			wantOps: nil,
		},
		{
			name: "an unreachable API: nothing to undo",
			kube: func() *fakeKube {
				k := standardKube()
				k.podErr = errors.New("connection refused")
				return k
			},
			wantOps: nil,
		},
		{
			name:    "no pod in CNI_ARGS: nothing to undo",
			kube:    standardKube,
			args:    "IgnoreUnknown=1",
			wantOps: nil,
		},
		{
			name:    "delegates-only mode: the inline delegates, in reverse",
			conf:    `,"delegates":[` + clusterDelegate + `,{"cniVersion":"1.0.0","name":"extra","type":"macvlan"}]`,
			wantOps: []string{"DEL extra net1", "DEL cbr0 eth0"},
		},
		{
			name:     "R-7.2b a failure is reported after trying every attachment",
			kube:     standardKube,
			failDel:  "ns1/net-a",
			wantOps:  reverseDels,
			wantFail: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var conf *config.PluginConf
			if strings.Contains(tt.conf, "delegates") {
				conf = testConf(t, dir, "1.0.0", tt.conf)
			} else {
				conf = defaultConf(t, dir, tt.conf)
			}
			var kube *fakeKube
			if tt.kube != nil {
				kube = tt.kube()
			}
			del := &fakeDelegates{delErr: map[string]error{}}
			if tt.failDel != "" {
				del.delErr[tt.failDel] = errors.New("DEL failed")
			}
			args := tt.args
			if args == "" {
				args = podArgs
			}
			err := newEngine(kube, del, conf).Del(t.Context(), newRequest(t, request.Del, args), conf)
			if diff := cmp.Diff(tt.wantOps, del.ops()); diff != "" {
				t.Errorf("delegate calls (-want +got):\n%s", diff)
			}
			if tt.wantFail {
				var de *DetachError
				if !errors.As(err, &de) || len(de.Failed) != 1 {
					t.Errorf("Del error = %v, want a *DetachError with one failure", err)
				}
				return
			}
			if err != nil {
				t.Errorf("Del: %v", err)
			}
		})
	}
}

// TestDelDoesNotWaitForReadiness proves that DEL never waits for the readiness
// indicator file: teardown must not be blocked by the cluster network.
func TestDelDoesNotWaitForReadiness(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, `,"readinessindicatorfile":`+quote(filepath.Join(dir, "never"))+`,"readinessIndicatorTimeout":"45s"`)
	del := &fakeDelegates{}
	start := time.Now()
	if err := newEngine(standardKube(), del, conf).Del(t.Context(), newRequest(t, request.Del, podArgs), conf); err != nil {
		t.Fatalf("Del: %v", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("DEL took %v with a missing readiness file", waited)
	}
	if diff := cmp.Diff(reverseDels, del.ops()); diff != "" {
		t.Errorf("delegate calls (-want +got):\n%s", diff)
	}
}

// TestDelOutlivesCaller proves that DEL's teardown runs to completion on a
// context of its own, bounded, when its caller goes away before or during it
// (the runtime's DEL timeout kills the shim): every attachment still gets a
// live DEL, the record goes, and DEL succeeds; a teardown cut short would leave
// half the pod attached with nobody to notice until the next retry.
func TestDelOutlivesCaller(t *testing.T) {
	for _, during := range []bool{false, true} {
		name := "the caller is gone before DEL starts"
		if during {
			name = "the caller goes during the first detach"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			conf := defaultConf(t, dir, "")
			fake := &fakeDelegates{}
			e := newEngine(standardKube(), fake, conf)
			if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
				t.Fatalf("Add: %v", err)
			}
			fake.calls = nil
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if !during {
				cancel()
			}
			del := &goneCaller{fakeDelegates: fake, cancel: cancel, cancelOnDel: during}
			e.Delegates = del
			if err := e.Del(ctx, newRequest(t, request.Del, podArgs), conf); err != nil {
				t.Fatalf("Del: %v", err)
			}
			if diff := cmp.Diff(reverseDels, fake.ops()); diff != "" {
				t.Errorf("delegate calls (-want +got):\n%s", diff)
			}
			if want := []string{"live bounded", "live bounded", "live bounded"}; !slices.Equal(del.delCtx, want) {
				t.Errorf("DEL contexts %v, want %v", del.delCtx, want)
			}
			if recordsOf(e).has("c1") {
				t.Error("the record survived a complete DEL")
			}
		})
	}
}

// TestDelLocks proves that DEL holds its sandbox's lock (R-7.3: a DEL from
// another process waits for an ADD of the same sandbox, and sees all of it)
// and, inside it, the records' lock shared while its delegates run: the CNI
// spec (section 3, "Lifecycle & Ordering") lets no GC run while an ADD or a DEL
// is in progress, and our GC, which holds the lock exclusively, tears
// sandboxes down and sends its delegates GC from the records and the result
// cache, which a DEL half done has left half changed.
func TestDelLocks(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	fake := &fakeDelegates{}
	e := newEngine(standardKube(), fake, conf)
	if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
		t.Fatalf("Add: %v", err)
	}
	recs := recordsOf(e)
	recs.trace = nil
	e.Delegates = &heldDuring{Delegates: fake, check: func(op string) {
		if shared, exclusive := recs.held(); shared != 1 || exclusive != 0 || !recs.sandboxHeld("c1") {
			t.Errorf("%s runs holding %d shared, %d exclusive, sandbox %v; want the sandbox's lock and 1 shared", op, shared, exclusive, recs.sandboxHeld("c1"))
		}
	}}
	if err := e.Del(t.Context(), newRequest(t, request.Del, podArgs), conf); err != nil {
		t.Fatalf("Del: %v", err)
	}
	want := []string{"lock sandbox c1", "lock shared", "load c1", "remove c1", "unlock shared", "unlock sandbox c1"}
	if diff := cmp.Diff(want, recs.ops()); diff != "" {
		t.Errorf("records calls (-want +got):\n%s", diff)
	}
}

// heldDuring runs check before every ADD, DEL and CHECK of the delegates it
// wraps: what a test sees while a delegate runs.
type heldDuring struct {
	Delegates
	check func(op string)
}

func (h *heldDuring) Add(ctx context.Context, sb podnet.Sandbox, a podnet.Attachment) (types.Result, error) {
	h.check("ADD " + a.Network)
	return h.Delegates.Add(ctx, sb, a)
}

func (h *heldDuring) Del(ctx context.Context, sb podnet.Sandbox, a podnet.Attachment) error {
	h.check("DEL " + a.Network)
	return h.Delegates.Del(ctx, sb, a)
}

func (h *heldDuring) Check(ctx context.Context, sb podnet.Sandbox, a podnet.Attachment) error {
	h.check("CHECK " + a.Network)
	return h.Delegates.Check(ctx, sb, a)
}
