package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/engine/attach"
	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
	"github.com/polynet-cni/polynet/internal/selection"
)

// standardOps are the delegate ADDs of the standard pod, in order.
var standardOps = []string{"ADD cbr0 eth0", "ADD ns1/net-a net1", "ADD ns1/net-b net2"}

// TestAddRecordsBeforeFirstDelegate proves that ADD writes the attachment record,
// listing every planned attachment, before the first delegate runs, so a crash
// during ADD still leaves DEL everything it needs; and that it holds the
// records' lock shared from before the record is written until its delegates
// are done, so a GC never sees it half made.
func TestAddRecordsBeforeFirstDelegate(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	kube := standardKube()
	del := &fakeDelegates{}
	e := newEngine(kube, del, conf)
	checked := false
	del.beforeAdd = func(sb podnet.Sandbox, a podnet.Attachment) {
		if checked {
			return
		}
		checked = true
		ops := recordsOf(e).ops()
		if lock, save := slices.Index(ops, "lock shared"), slices.Index(ops, "save c1"); lock < 0 || save < lock {
			t.Errorf("records calls before the first delegate %v, want the shared lock taken, then the record saved", ops)
		}
		if shared, exclusive := recordsOf(e).held(); shared != 1 || exclusive != 0 {
			t.Errorf("locks held while the first delegate runs: %d shared, %d exclusive; want 1 shared", shared, exclusive)
		}
		rec, err := e.Records.Load("c1")
		if err != nil {
			t.Fatalf("loading the record from inside the first delegate: %v", err)
		}
		var got []string
		for _, a := range rec.Attachments {
			got = append(got, a.Network+" "+a.IfName)
		}
		want := []string{"cbr0 eth0", "ns1/net-a net1", "ns1/net-b net2"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("recorded attachments before the first ADD (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(rec.Attachments[0], a); diff != "" {
			t.Errorf("first delegate's attachment differs from the record (-record +delegate):\n%s", diff)
		}
	}
	if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if !checked {
		t.Fatal("no delegate ran")
	}
	// The sandbox's lock is outside the records' (TestAddLocksItsSandbox).
	ops := slices.DeleteFunc(recordsOf(e).ops(), func(op string) bool { return strings.Contains(op, " sandbox ") })
	if ops[len(ops)-1] != "unlock shared" {
		t.Errorf("records calls %v, want the shared lock released last", ops)
	}
}

// TestAddRunsDelegatesInOrder proves that ADD runs the cluster network first,
// then the selected networks in annotation order, each in the sandbox,
// with exactly the attachment it recorded, and keeps the record afterwards.
func TestAddRunsDelegatesInOrder(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	del := &fakeDelegates{}
	e := newEngine(standardKube(), del, conf)
	if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if diff := cmp.Diff(standardOps, del.ops()); diff != "" {
		t.Errorf("delegate calls (-want +got):\n%s", diff)
	}
	for _, c := range del.calls {
		if c.ContainerID != "c1" || c.NetNS != testNetNS {
			t.Errorf("%s %s ran in sandbox %q %q, want c1 %s", c.Op, c.Network, c.ContainerID, c.NetNS, testNetNS)
		}
	}
	rec, err := e.Records.Load("c1")
	if err != nil {
		t.Fatalf("record after ADD: %v", err)
	}
	if diff := cmp.Diff(rec.Attachments, del.added); diff != "" {
		t.Errorf("attachments run differ from the record (-record +run):\n%s", diff)
	}
	// Version and Checksum are the store's to set.
	wantHead := podnet.Record{
		ContainerID: "c1", IfName: "eth0", NetNS: testNetNS,
		Pod:        podnet.PodRef{Namespace: "ns1", Name: "pod-1", UID: "uid-1"},
		CNIVersion: "1.0.0", Created: testNow,
	}
	gotHead := *rec
	gotHead.Attachments, gotHead.Version, gotHead.Checksum = nil, 0, ""
	if diff := cmp.Diff(wantHead, gotHead); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	if !rec.Attachments[0].Default || rec.Attachments[1].Default || rec.Attachments[2].Default {
		t.Errorf("default flags %v %v %v, want only the first", rec.Attachments[0].Default, rec.Attachments[1].Default, rec.Attachments[2].Default)
	}
}

// TestAddRollback proves R-7.2a: the first failing attachment stops the ADD,
// later attachments are never tried, the failed one and those before it get a DEL
// in reverse order; the record goes when that rollback succeeded and stays when it
// failed; the error is an *AttachError naming the pod and the network and keeping
// the delegate's *types.Error reachable.
func TestAddRollback(t *testing.T) {
	delegateErr := &types.Error{Code: types.ErrTryAgainLater, Msg: "no addresses left", Details: "pool 10.1.0.0/24"}
	tests := []struct {
		name        string
		failAt      string
		failDel     []string
		wantOps     []string
		wantIfName  string
		wantKept    bool
		wantAdded   []string
		wantRollErr bool
	}{
		{
			name:       "R-7.2a failure of the 2nd of 3 rolls back the 2nd then the 1st, never the 3rd",
			failAt:     "ns1/net-a",
			wantOps:    []string{"ADD cbr0 eth0", "ADD ns1/net-a net1", "DEL ns1/net-a net1", "DEL cbr0 eth0"},
			wantIfName: "net1",
			wantAdded:  []string{"Normal/AddedInterface", "Warning/NetworkAttachmentFailed"},
		},
		{
			name:        "R-7.2a a failed rollback keeps the record and is reported",
			failAt:      "ns1/net-a",
			failDel:     []string{"cbr0"},
			wantOps:     []string{"ADD cbr0 eth0", "ADD ns1/net-a net1", "DEL ns1/net-a net1", "DEL cbr0 eth0"},
			wantIfName:  "net1",
			wantKept:    true,
			wantAdded:   []string{"Normal/AddedInterface", "Warning/NetworkAttachmentFailed"},
			wantRollErr: true,
		},
		{
			name:        "R-7.2a a failed rollback of the failed attachment still undoes the others",
			failAt:      "ns1/net-a",
			failDel:     []string{"ns1/net-a"},
			wantOps:     []string{"ADD cbr0 eth0", "ADD ns1/net-a net1", "DEL ns1/net-a net1", "DEL cbr0 eth0"},
			wantIfName:  "net1",
			wantKept:    true,
			wantAdded:   []string{"Normal/AddedInterface", "Warning/NetworkAttachmentFailed"},
			wantRollErr: true,
		},
		{
			name:       "R-7.2a failure of the cluster network attempts nothing else",
			failAt:     "cbr0",
			wantOps:    []string{"ADD cbr0 eth0", "DEL cbr0 eth0"},
			wantIfName: "eth0",
			wantAdded:  []string{"Warning/NetworkAttachmentFailed"},
		},
		{
			name:       "R-7.2a failure of the last rolls back all in reverse",
			failAt:     "ns1/net-b",
			wantOps:    []string{"ADD cbr0 eth0", "ADD ns1/net-a net1", "ADD ns1/net-b net2", "DEL ns1/net-b net2", "DEL ns1/net-a net1", "DEL cbr0 eth0"},
			wantIfName: "net2",
			wantAdded:  []string{"Normal/AddedInterface", "Normal/AddedInterface", "Warning/NetworkAttachmentFailed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := defaultConf(t, dir, "")
			kube := standardKube()
			del := &fakeDelegates{addErr: map[string]error{tt.failAt: delegateErr}, delErr: map[string]error{}}
			for _, n := range tt.failDel {
				del.delErr[n] = errors.New("rollback of " + n + " failed")
			}
			e := newEngine(kube, del, conf)
			res, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf)
			if res != nil {
				t.Errorf("a failed ADD returned a result: %v", res)
			}
			if diff := cmp.Diff(tt.wantOps, del.ops()); diff != "" {
				t.Errorf("delegate calls (-want +got):\n%s", diff)
			}
			var ae *AttachError
			if !errors.As(err, &ae) {
				t.Fatalf("Add error = %v, want *AttachError", err)
			}
			if ae.Pod.String() != "ns1/pod-1" || ae.Network != tt.failAt || ae.IfName != tt.wantIfName {
				t.Errorf("AttachError names pod %s network %q interface %q, want ns1/pod-1 %q %q", ae.Pod, ae.Network, ae.IfName, tt.failAt, tt.wantIfName)
			}
			var te *types.Error
			if !errors.As(err, &te) || te.Code != types.ErrTryAgainLater || te.Msg != "no addresses left" {
				t.Errorf("delegate's *types.Error not reachable through %v (got %v)", err, te)
			}
			for _, s := range []string{"ns1/pod-1", `"` + tt.failAt + `"`, "no addresses left"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
			if (ae.Rollback != nil) != tt.wantRollErr {
				t.Errorf("Rollback = %v, want an error: %v", ae.Rollback, tt.wantRollErr)
			}
			for _, n := range tt.failDel {
				if !strings.Contains(err.Error(), n) || !strings.Contains(err.Error(), "rolling back") {
					t.Errorf("error %q does not report the failed rollback of %s", err, n)
				}
			}
			_, loadErr := e.Records.Load("c1")
			switch {
			case tt.wantKept && loadErr != nil:
				t.Errorf("record removed after a failed rollback: %v", loadErr)
			case !tt.wantKept && !errors.Is(loadErr, fs.ErrNotExist):
				t.Errorf("record after a successful rollback: Load error = %v, want not exist", loadErr)
			}
			if diff := cmp.Diff(tt.wantAdded, kube.reasons()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if len(kube.patches) != 0 {
				t.Errorf("a failed ADD wrote network-status: %v", kube.patches)
			}
		})
	}
}

// TestAddResultVersion proves that ADD returns the cluster network's result in the
// plugin configuration's cniVersion, for every version, and that the empty result
// of a deleted pod is given in that version too.
func TestAddResultVersion(t *testing.T) {
	for _, version := range []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(version, func(t *testing.T) {
			dir := t.TempDir()
			conf := testConf(t, dir, version, `,"delegates":[{"cniVersion":"`+version+`","name":"cbr0","type":"bridge"}]`)
			kube := standardKube()
			del := &fakeDelegates{}
			e := newEngine(kube, del, conf)
			res, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf)
			if err != nil {
				t.Fatalf("Add: %v", err)
			}
			if res.Version() != version {
				t.Errorf("result version %q, want %q", res.Version(), version)
			}
			cur, err := current.NewResultFromResult(res)
			if err != nil {
				t.Fatalf("converting the result back: %v", err)
			}
			if len(cur.IPs) != 1 || cur.IPs[0].Address.String() != "10.0.0.1/24" {
				t.Errorf("result IPs %v, want the cluster network's 10.0.0.1/24", cur.IPs)
			}

			// The pod is gone: the empty result, in the same version.
			delete(kube.pods, "ns1/pod-1")
			res, err = newEngine(kube, &fakeDelegates{}, conf).Add(t.Context(), newRequest(t, request.Add, podArgs), conf)
			if err != nil {
				t.Fatalf("Add of a deleted pod: %v", err)
			}
			if res.Version() != version {
				t.Errorf("empty result version %q, want %q", res.Version(), version)
			}
		})
	}
}

// TestAddNetworkStatus proves section 5: network-status is patched once, on the
// pod with its UID, with one entry per attachment, default true on the cluster
// network only; and an AddedInterface event is recorded per
// attachment, in upstream's wording.
func TestAddNetworkStatus(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	kube := standardKube()
	e := newEngine(kube, &fakeDelegates{}, conf)
	if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
		t.Fatalf("Add: %v", err)
	}
	podRef := podnet.PodRef{Namespace: "ns1", Name: "pod-1", UID: "uid-1"}
	if len(kube.patches) != 1 {
		t.Fatalf("%d network-status patches, want 1: %v", len(kube.patches), kube.patches)
	}
	if kube.patches[0].Ref != podRef {
		t.Errorf("patched pod %+v, want %+v", kube.patches[0].Ref, podRef)
	}
	entries, err := netstatus.Decode(kube.patches[0].Value)
	if err != nil {
		t.Fatalf("decoding %s: %v", kube.patches[0].Value, err)
	}
	want := []netstatus.Entry{
		{Name: "cbr0", Interface: "eth0", IPs: []string{"10.0.0.1"}, Mac: "02:00:00:00:00:01", Default: true},
		{Name: "ns1/net-a", Interface: "net1", IPs: []string{"10.0.0.2"}, Mac: "02:00:00:00:00:02"},
		{Name: "ns1/net-b", Interface: "net2", IPs: []string{"10.0.0.3"}, Mac: "02:00:00:00:00:03"},
	}
	if diff := cmp.Diff(want, entries); diff != "" {
		t.Errorf("network-status entries (-want +got):\n%s", diff)
	}
	if n := strings.Count(kube.patches[0].Value, `"default":true`); n != 1 {
		t.Errorf("%d entries say \"default\":true in %s, want exactly 1", n, kube.patches[0].Value)
	}
	wantEvents := []eventCall{
		{podRef, EventNormal, ReasonAddedInterface, "Add eth0 [10.0.0.1/24] from cbr0"},
		{podRef, EventNormal, ReasonAddedInterface, "Add net1 [10.0.0.2/24] from ns1/net-a"},
		{podRef, EventNormal, ReasonAddedInterface, "Add net2 [10.0.0.3/24] from ns1/net-b"},
	}
	if diff := cmp.Diff(wantEvents, kube.events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestAddNetworkStatusFailureIsNotFatal proves that a failed network-status write
// does not fail ADD (the interfaces work) but is reported with a Warning
// NetworkStatusFailed event; and that a failing event write is not fatal either.
func TestAddNetworkStatusFailureIsNotFatal(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	kube := standardKube()
	kube.patchErr = errors.New("pods/status is forbidden")
	del := &fakeDelegates{}
	e := newEngine(kube, del, conf)
	res, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf)
	if err != nil {
		t.Fatalf("Add failed because network-status could not be written: %v", err)
	}
	if res == nil {
		t.Fatal("no result")
	}
	if len(kube.patches) != 1 {
		t.Errorf("%d patch attempts, want 1", len(kube.patches))
	}
	last := kube.events[len(kube.events)-1]
	if last.Type != EventWarning || last.Reason != ReasonStatusFailed ||
		!strings.Contains(last.Message, netstatus.Annotation) || !strings.Contains(last.Message, "forbidden") {
		t.Errorf("last event %+v, want a Warning NetworkStatusFailed naming the annotation and the error", last)
	}
	if _, err := e.Records.Load("c1"); err != nil {
		t.Errorf("record after a successful ADD: %v", err)
	}
	if diff := cmp.Diff(standardOps, del.ops()); diff != "" {
		t.Errorf("delegate calls (-want +got):\n%s", diff)
	}

	// Events that cannot be written do not fail ADD either.
	kube2 := standardKube()
	kube2.eventErr = errors.New("events are forbidden")
	conf2 := defaultConf(t, t.TempDir(), "")
	if _, err := newEngine(kube2, &fakeDelegates{}, conf2).Add(t.Context(), newRequest(t, request.Add, podArgs), conf2); err != nil {
		t.Errorf("Add failed because events could not be written: %v", err)
	}
}

// TestAddStatusRefusedForRecreatedPodRollsBack: the pod was deleted and
// recreated under its name while the delegates ran, so the API server refuses
// the status patch on its UID. The sandbox belongs to a pod that is gone: the
// ADD fails with PodUIDMismatch and rolls back like any late failure.
func TestAddStatusRefusedForRecreatedPodRollsBack(t *testing.T) {
	conf := defaultConf(t, t.TempDir(), "")
	kube := standardKube()
	kube.patchErr = &podnet.PodRecreatedError{
		Pod: podnet.PodRef{Namespace: "ns1", Name: "pod-1", UID: "uid-1"},
		Err: &podnet.APIError{Op: "patching pod status", Status: 422},
	}
	del := &fakeDelegates{}
	e := newEngine(kube, del, conf)
	res, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf)
	if err == nil || res != nil {
		t.Fatalf("Add = %v, %v; want the refused status write's failure", res, err)
	}
	var coder cnicode.Coder
	if !errors.As(err, &coder) || coder.CNICode() != cnicode.PodUIDMismatch {
		t.Errorf("Add error %v, want CNI code %d", err, cnicode.PodUIDMismatch)
	}
	want := append(slices.Clone(standardOps), reverseDels...)
	if diff := cmp.Diff(want, del.ops()); diff != "" {
		t.Errorf("delegate calls (-want +got):\n%s", diff)
	}
	if recordsOf(e).has("c1") {
		t.Error("the record survived the rollback")
	}
}

// TestAddPod proves the pod checks of ADD: a pod whose UID is not the sandbox's
// fails with *PodUIDMismatchError unless it is a static pod; a pod that no longer
// exists gets the empty result (interface CNI_IFNAME, 0.0.0.0/0) with no delegate
// run and no record; an API failure fails the ADD.
func TestAddPod(t *testing.T) {
	apiErr := errors.New("connection refused")
	tests := []struct {
		name      string
		args      string
		pod       *podnet.Pod
		podErr    error
		wantOps   []string
		wantErr   func(error) bool
		wantEmpty bool
		wantUID   string
	}{
		{
			name: "UID mismatch fails",
			pod:  &podnet.Pod{Namespace: "ns1", Name: "pod-1", UID: "recreated-uid"},
			wantErr: func(err error) bool {
				var e *PodUIDMismatchError
				return errors.As(err, &e) && e.APIUID == "recreated-uid" && e.Sandbox == "uid-1"
			},
		},
		{
			name: "a config.source of api is not a static pod",
			pod: &podnet.Pod{Namespace: "ns1", Name: "pod-1", UID: "recreated-uid",
				Annotations: map[string]string{podnet.ConfigSourceAnnotation: "api"}},
			wantErr: func(err error) bool { var e *PodUIDMismatchError; return errors.As(err, &e) },
		},
		{
			name: "a static pod's mirror UID is accepted",
			pod: &podnet.Pod{Namespace: "ns1", Name: "pod-1", UID: "mirror-uid",
				Annotations: map[string]string{podnet.ConfigSourceAnnotation: "file"}},
			wantOps: []string{"ADD cbr0 eth0"},
			wantUID: "uid-1",
		},
		{
			name:    "without K8S_POD_UID there is nothing to compare, and the API's UID is used",
			args:    "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-1",
			pod:     &podnet.Pod{Namespace: "ns1", Name: "pod-1", UID: "api-uid"},
			wantOps: []string{"ADD cbr0 eth0"},
			wantUID: "api-uid",
		},
		{
			name:      "a deleted pod gets the empty result and nothing is attached",
			wantEmpty: true,
		},
		{
			name:    "an API failure fails the ADD",
			pod:     testPod(""),
			podErr:  apiErr,
			wantErr: func(err error) bool { return errors.Is(err, apiErr) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := defaultConf(t, dir, "")
			kube := newFakeKube()
			if tt.pod != nil {
				kube.addPod(tt.pod)
			}
			kube.podErr = tt.podErr
			args := tt.args
			if args == "" {
				args = podArgs
			}
			del := &fakeDelegates{}
			e := newEngine(kube, del, conf)
			res, err := e.Add(t.Context(), newRequest(t, request.Add, args), conf)
			if diff := cmp.Diff(tt.wantOps, del.ops()); diff != "" {
				t.Errorf("delegate calls (-want +got):\n%s", diff)
			}
			_, loadErr := e.Records.Load("c1")
			if tt.wantErr != nil {
				if !tt.wantErr(err) {
					t.Errorf("Add error = %v (%T), not the one wanted", err, err)
				}
				if !errors.Is(loadErr, fs.ErrNotExist) {
					t.Errorf("a refused ADD left a record (Load error %v)", loadErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Add: %v", err)
			}
			if tt.wantEmpty {
				data, err := json.Marshal(res)
				if err != nil {
					t.Fatal(err)
				}
				want := `{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"` + testNetNS + `"}],` +
					`"ips":[{"interface":0,"address":"0.0.0.0/0","gateway":"0.0.0.0"}]}`
				var gotJSON, wantJSON any
				if err := json.Unmarshal(data, &gotJSON); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal([]byte(want), &wantJSON); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(wantJSON, gotJSON); diff != "" {
					t.Errorf("empty result (-want +got):\n%s", diff)
				}
				if !errors.Is(loadErr, fs.ErrNotExist) {
					t.Errorf("the deleted pod got a record (Load error %v)", loadErr)
				}
				if len(kube.events) != 0 || len(kube.patches) != 0 {
					t.Errorf("the deleted pod got events %v or status %v", kube.events, kube.patches)
				}
				return
			}
			if loadErr != nil {
				t.Errorf("record: %v", loadErr)
			}
			if got, _ := request.Args(del.added[0].CNIArgs).Get("K8S_POD_UID"); got != tt.wantUID {
				t.Errorf("delegate K8S_POD_UID = %q, want %q", got, tt.wantUID)
			}
		})
	}
}

// TestAddDelegatesOnly proves that without Kubernetes (Kube nil) ADD runs exactly
// the inline delegates, reads no annotation and writes no status.
func TestAddDelegatesOnly(t *testing.T) {
	dir := t.TempDir()
	conf := testConf(t, dir, "1.0.0", `,"delegates":[`+clusterDelegate+`,{"cniVersion":"1.0.0","name":"extra","type":"macvlan"}]`)
	del := &fakeDelegates{}
	e := newEngine(nil, del, conf)
	res, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	if diff := cmp.Diff([]string{"ADD cbr0 eth0", "ADD extra net1"}, del.ops()); diff != "" {
		t.Errorf("delegate calls (-want +got):\n%s", diff)
	}
	if res.Version() != "1.0.0" {
		t.Errorf("result version %q", res.Version())
	}
	rec, err := e.Records.Load("c1")
	if err != nil {
		t.Fatalf("record: %v", err)
	}
	if rec.Pod.UID != "uid-1" {
		t.Errorf("record pod UID %q, want the runtime's uid-1", rec.Pod.UID)
	}
}

// TestAddInvalidSelection proves the handling of a networks annotation that is
// not valid: ignored, with a Warning InvalidNetworkSelection event, when
// strictNetworkSelection is off (the standard's "SHALL be ignored"); a
// *SelectionError when it is on; and a conflict (ips with ipam-claim-reference,
// R-4.1.2.1.11) always fails. A default-network annotation naming two networks
// fails too.
func TestAddInvalidSelection(t *testing.T) {
	const (
		invalid  = `[{"name":"net-a","mac":"not-a-mac"}]`
		conflict = `[{"name":"net-a","ips":["10.1.1.5/24"],"ipam-claim-reference":"claim-1"}]`
	)
	tests := []struct {
		name        string
		extra       string
		annotations map[string]string
		wantOps     []string
		wantEvents  []string
		wantErr     func(error) bool
	}{
		{
			name:        "R-4.1.2.1.4 an invalid annotation is ignored with a warning when not strict",
			annotations: map[string]string{selection.NetworksAnnotation: invalid},
			wantOps:     []string{"ADD cbr0 eth0"},
			wantEvents:  []string{"Warning/InvalidNetworkSelection", "Normal/AddedInterface"},
		},
		{
			name:        "R-4.1.2.1.4 an invalid annotation fails when strict",
			extra:       `,"strictNetworkSelection":true`,
			annotations: map[string]string{selection.NetworksAnnotation: invalid},
			wantErr: func(err error) bool {
				var se *SelectionError
				var ie *selection.InvalidError
				return errors.As(err, &se) && errors.As(err, &ie) && ie.Field == "mac"
			},
		},
		{
			name:        "R-4.1.2.1.11 ips with ipam-claim-reference fails even when not strict",
			annotations: map[string]string{selection.NetworksAnnotation: conflict},
			wantErr: func(err error) bool {
				var se *SelectionError
				var ce *selection.ConflictError
				return errors.As(err, &se) && errors.As(err, &ce)
			},
		},
		{
			name:        "R-4.1.2.1.11 ips with ipam-claim-reference fails when strict",
			extra:       `,"strictNetworkSelection":true`,
			annotations: map[string]string{selection.NetworksAnnotation: conflict},
			wantErr: func(err error) bool {
				var ce *selection.ConflictError
				return errors.As(err, &ce)
			},
		},
		{
			name:        "a default-network annotation naming two networks fails",
			annotations: map[string]string{selection.DefaultNetworkAnnotation: "alt,alt2"},
			wantErr: func(err error) bool {
				var se *SelectionError
				return errors.As(err, &se) && strings.Contains(err.Error(), selection.DefaultNetworkAnnotation)
			},
		},
		{
			name:        "a default-network annotation replaces the cluster network",
			annotations: map[string]string{selection.DefaultNetworkAnnotation: "alt", selection.NetworksAnnotation: "net-a"},
			wantOps:     []string{"ADD kube-system/alt eth0", "ADD ns1/net-a net1"},
			wantEvents:  []string{"Normal/AddedInterface", "Normal/AddedInterface"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := defaultConf(t, dir, tt.extra)
			kube := newFakeKube()
			pod := testPod("")
			pod.Annotations = tt.annotations
			kube.addPod(pod)
			kube.addNAD("ns1", "net-a", `{"cniVersion":"1.0.0","type":"macvlan","capabilities":{"ips":true,"mac":true}}`)
			kube.addNAD("kube-system", "alt", `{"cniVersion":"1.0.0","type":"calico"}`)
			del := &fakeDelegates{}
			e := newEngine(kube, del, conf)
			_, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf)
			if diff := cmp.Diff(tt.wantOps, del.ops()); diff != "" {
				t.Errorf("delegate calls (-want +got):\n%s", diff)
			}
			if tt.wantErr != nil {
				if !tt.wantErr(err) {
					t.Errorf("Add error = %v (%T), not the one wanted", err, err)
				}
				if _, loadErr := e.Records.Load("c1"); !errors.Is(loadErr, fs.ErrNotExist) {
					t.Errorf("a refused ADD left a record (Load error %v)", loadErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Add: %v", err)
			}
			if diff := cmp.Diff(tt.wantEvents, kube.reasons()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			for _, ev := range kube.events {
				if ev.Reason == ReasonInvalidSelection && !strings.Contains(ev.Message, "mac") {
					t.Errorf("InvalidNetworkSelection event %q does not name the field", ev.Message)
				}
			}
		})
	}
}

// TestAddResolveFailure proves that a network that cannot be resolved fails the
// ADD before any delegate runs or any record is written, with the pod named in
// the error and a Warning event: upstream's NoNetworkFound for a missing network,
// NetworkAttachmentFailed otherwise (here a namespace isolation refusal, R-7.4).
func TestAddResolveFailure(t *testing.T) {
	tests := []struct {
		name       string
		extra      string
		networks   string
		wantErr    any
		wantReason string
	}{
		{
			name:       "R-3.4.1 a missing NAD",
			networks:   "missing",
			wantErr:    new(*attach.NetworkNotFoundError),
			wantReason: ReasonNoNetworkFound,
		},
		{
			name:       "R-7.4 a refused NAD",
			extra:      `,"namespaceIsolation":true`,
			networks:   "other/net-a",
			wantErr:    new(*attach.RefusedError),
			wantReason: ReasonAttachFailed,
		},
		{
			name:       "R-4.1.2.1.3 a missing capability",
			networks:   `[{"name":"net-a","ips":["10.1.1.5/24"]}]`,
			wantErr:    new(*attach.CapabilityError),
			wantReason: ReasonAttachFailed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := defaultConf(t, dir, tt.extra)
			kube := newFakeKube()
			kube.addPod(testPod(tt.networks))
			kube.addNAD("ns1", "net-a", `{"cniVersion":"1.0.0","type":"macvlan"}`)
			kube.addNAD("other", "net-a", `{"cniVersion":"1.0.0","type":"macvlan"}`)
			del := &fakeDelegates{}
			e := newEngine(kube, del, conf)
			_, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf)
			if !errors.As(err, tt.wantErr) {
				t.Fatalf("Add error = %v, want %T", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), "ns1/pod-1") {
				t.Errorf("error %q does not name the pod", err)
			}
			if len(del.calls) != 0 {
				t.Errorf("delegates ran: %v", del.ops())
			}
			if _, loadErr := e.Records.Load("c1"); !errors.Is(loadErr, fs.ErrNotExist) {
				t.Errorf("a failed resolution left a record (Load error %v)", loadErr)
			}
			if diff := cmp.Diff([]string{EventWarning + "/" + tt.wantReason}, kube.reasons()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAddReadiness proves that ADD waits for the readiness indicator file: it
// proceeds when the file exists, fails with *NotReadyError once
// readinessIndicatorTimeout has passed without it, and stops waiting
// when the request is cancelled.
func TestAddReadiness(t *testing.T) {
	t.Run("R-6.1.2 a missing file fails after the timeout", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ready")
		conf := defaultConf(t, dir, `,"readinessindicatorfile":`+quote(path)+`,"readinessIndicatorTimeout":"300ms"`)
		kube := standardKube()
		del := &fakeDelegates{}
		start := time.Now()
		_, err := newEngine(kube, del, conf).Add(t.Context(), newRequest(t, request.Add, podArgs), conf)
		elapsed := time.Since(start)
		var nr *NotReadyError
		if !errors.As(err, &nr) {
			t.Fatalf("Add error = %v, want *NotReadyError", err)
		}
		if nr.Path != path || nr.Waited != "300ms" {
			t.Errorf("NotReadyError %+v, want path %s waited 300ms", nr, path)
		}
		if elapsed < 300*time.Millisecond || elapsed > 5*time.Second {
			t.Errorf("waited %v for a 300ms timeout", elapsed)
		}
		if len(del.calls) != 0 || kube.podReads != 0 {
			t.Errorf("a not ready ADD went on: delegates %v, pod reads %d", del.ops(), kube.podReads)
		}
	})
	t.Run("R-6.1.2 an existing file lets ADD proceed", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ready")
		conf := defaultConf(t, dir, `,"readinessindicatorfile":`+quote(path)+`,"readinessIndicatorTimeout":"300ms"`)
		del := &fakeDelegates{}
		e := newEngine(standardKube(), del, conf)
		filesOf(e).put(path, nil)
		if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
			t.Fatalf("Add: %v", err)
		}
		if diff := cmp.Diff(standardOps, del.ops()); diff != "" {
			t.Errorf("delegate calls (-want +got):\n%s", diff)
		}
	})
	t.Run("a file appearing while waiting lets ADD proceed", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ready")
		conf := defaultConf(t, dir, `,"readinessindicatorfile":`+quote(path)+`,"readinessIndicatorTimeout":"10s"`)
		e := newEngine(standardKube(), &fakeDelegates{}, conf)
		files := filesOf(e)
		files.missed = make(chan string, 1)
		// The file appears only once the engine has found it missing, so a
		// successful ADD has waited for it.
		go func() {
			select {
			case p := <-files.missed:
				files.put(p, nil)
			case <-t.Context().Done():
			}
		}()
		if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
			t.Fatalf("Add: %v", err)
		}
	})
	t.Run("a cancelled request stops waiting", func(t *testing.T) {
		dir := t.TempDir()
		conf := defaultConf(t, dir, `,"readinessindicatorfile":`+quote(filepath.Join(dir, "ready"))+`,"readinessIndicatorTimeout":"45s"`)
		e := newEngine(standardKube(), &fakeDelegates{}, conf)
		files := filesOf(e)
		files.missed = make(chan string, 1)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		// The request is cancelled once the engine waits.
		go func() {
			select {
			case <-files.missed:
				cancel()
			case <-ctx.Done():
			}
		}()
		start := time.Now()
		_, err := e.Add(ctx, newRequest(t, request.Add, podArgs), conf)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Add error = %v, want the context's cancellation", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("waited %v after the request was cancelled", time.Since(start))
		}
	})
}

// quote returns s as a JSON string.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestAddRecordFailureRunsNothing proves that when the record cannot be written
// (or the records' lock not taken) no delegate runs: an attachment made without a
// record could not be undone by a DEL after a crash.
func TestAddRecordFailureRunsNothing(t *testing.T) {
	diskErr := errors.New("no space left on device")
	tests := []struct {
		name  string
		spoil func(r *fakeRecords)
	}{
		{name: "the record cannot be saved", spoil: func(r *fakeRecords) { r.saveErr = diskErr }},
		{name: "the lock cannot be taken", spoil: func(r *fakeRecords) { r.lockErr = diskErr }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := defaultConf(t, dir, "")
			kube := standardKube()
			del := &fakeDelegates{}
			e := newEngine(kube, del, conf)
			tt.spoil(recordsOf(e))
			_, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf)
			if !errors.Is(err, diskErr) || !strings.Contains(err.Error(), "recording attachments") || !strings.Contains(err.Error(), "ns1/pod-1") {
				t.Errorf("Add error = %v, want the record failure, naming the pod", err)
			}
			if len(del.calls) != 0 {
				t.Errorf("delegates ran without a record: %v", del.ops())
			}
			if len(kube.patches) != 0 {
				t.Errorf("network-status written: %v", kube.patches)
			}
			if shared, exclusive := recordsOf(e).held(); shared != 0 || exclusive != 0 {
				t.Errorf("locks still held after the ADD: %d shared, %d exclusive", shared, exclusive)
			}
		})
	}
}

// goneCaller are the fake delegates of a caller that goes away mid-command
// (the daemon's request ends when the shim is killed): the ADD of network
// cancelAt cancels the caller's context, then fails as a delegate killed with
// it does, or, with completeAt, completes first. Every call on a context that
// has ended fails, as libcni's exec does; every DEL logs whether its context was
// live and bounded.
type goneCaller struct {
	*fakeDelegates
	cancel     context.CancelFunc
	cancelAt   string
	completeAt bool
	// cancelOnDel cancels the caller during the first DEL instead.
	cancelOnDel bool
	// delCtx logs, per DEL, "live" or the context's error, and "bounded" when
	// it has a deadline.
	delCtx []string
}

func (d *goneCaller) Add(ctx context.Context, sb podnet.Sandbox, a podnet.Attachment) (types.Result, error) {
	res, err := d.fakeDelegates.Add(ctx, sb, a)
	if a.Network == d.cancelAt {
		d.cancel()
		if !d.completeAt {
			return nil, fmt.Errorf("signal: killed: %w", ctx.Err())
		}
	}
	if err == nil && ctx.Err() != nil && a.Network != d.cancelAt {
		return nil, ctx.Err()
	}
	return res, err
}

func (d *goneCaller) Del(ctx context.Context, sb podnet.Sandbox, a podnet.Attachment) error {
	if d.cancelOnDel {
		d.cancelOnDel = false
		d.cancel()
	}
	state := "live"
	if ctx.Err() != nil {
		state = ctx.Err().Error()
	}
	if _, ok := ctx.Deadline(); ok {
		state += " bounded"
	}
	d.delCtx = append(d.delCtx, state)
	if err := d.fakeDelegates.Del(ctx, sb, a); err != nil {
		return err
	}
	return ctx.Err()
}

// TestAddCallerGoneRollsBack proves that a caller going away mid-ADD (the
// runtime kills the shim, and the daemon's request context ends) stops the ADD
// and rolls it back on a context of its own: every rollback DEL runs live,
// bounded by a timeout, whatever the caller's context; later attachments are
// not started; the record goes; network-status is not written. The ADD does
// not go on for a caller that cannot receive its result: it holds the
// sandbox while it runs, and the runtime's retry or DEL waits for it.
func TestAddCallerGoneRollsBack(t *testing.T) {
	tests := []struct {
		name       string
		cancelAt   string
		completeAt bool
		wantOps    []string
	}{
		{
			name:     "the caller goes while the 2nd of 3 runs, which is killed",
			cancelAt: "ns1/net-a",
			wantOps:  []string{"ADD cbr0 eth0", "ADD ns1/net-a net1", "DEL ns1/net-a net1", "DEL cbr0 eth0"},
		},
		{
			name:       "the caller goes while the 2nd of 3 runs, which completes: the 3rd is not started",
			cancelAt:   "ns1/net-a",
			completeAt: true,
			wantOps:    []string{"ADD cbr0 eth0", "ADD ns1/net-a net1", "DEL ns1/net-a net1", "DEL cbr0 eth0"},
		},
		{
			name:       "the caller goes while the last runs, which completes: nobody gets the result",
			cancelAt:   "ns1/net-b",
			completeAt: true,
			wantOps: []string{"ADD cbr0 eth0", "ADD ns1/net-a net1", "ADD ns1/net-b net2",
				"DEL ns1/net-b net2", "DEL ns1/net-a net1", "DEL cbr0 eth0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := defaultConf(t, dir, "")
			kube := standardKube()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			del := &goneCaller{fakeDelegates: &fakeDelegates{}, cancel: cancel, cancelAt: tt.cancelAt, completeAt: tt.completeAt}
			e := newEngine(kube, del.fakeDelegates, conf)
			e.Delegates = del
			res, err := e.Add(ctx, newRequest(t, request.Add, podArgs), conf)
			if err == nil || res != nil {
				t.Fatalf("Add = %v, %v; want an error once the caller is gone", res, err)
			}
			if diff := cmp.Diff(tt.wantOps, del.ops()); diff != "" {
				t.Errorf("delegate calls (-want +got):\n%s", diff)
			}
			for i, state := range del.delCtx {
				if state != "live bounded" {
					t.Errorf("rollback DEL %d ran on a context %q, want a live one with a deadline", i, state)
				}
			}
			var ae *AttachError
			if !errors.As(err, &ae) || ae.Rollback != nil {
				t.Errorf("Add error %v, want an *AttachError with a clean rollback", err)
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Add error %v does not say the caller went away", err)
			}
			if recordsOf(e).has("c1") {
				t.Error("the record survived a complete rollback")
			}
			if len(kube.patches) != 0 {
				t.Errorf("network-status written for a rolled back ADD: %v", kube.patches)
			}
			if reasons := kube.reasons(); len(reasons) == 0 || reasons[len(reasons)-1] != "Warning/NetworkAttachmentFailed" {
				t.Errorf("events %v, want the failure reported last", reasons)
			}
		})
	}
}

// TestAddLateFailureRollsBack proves that a failure after every delegate
// succeeded rolls the ADD back like an early one (R-7.2a): the cluster
// network's result has no address, which CNI 0.1.0 and 0.2.0 results cannot
// be without, so it cannot be returned in those versions. Every attachment is
// DEL'd in reverse, the record goes, network-status is never written (it would
// describe interfaces that are gone: section 5 reports attachments that
// exist), and the error, naming the version, carries IncompatibleVersion.
func TestAddLateFailureRollsBack(t *testing.T) {
	for _, version := range []string{"0.1.0", "0.2.0"} {
		t.Run(version, func(t *testing.T) {
			dir := t.TempDir()
			conf := testConf(t, dir, version, `,"delegates":[`+clusterDelegate+`]`)
			kube := standardKube()
			noAddress := &current.Result{CNIVersion: "1.0.0", Interfaces: []*current.Interface{{Name: "eth0", Sandbox: testNetNS}}}
			del := &fakeDelegates{results: map[string]types.Result{"cbr0": noAddress}}
			e := newEngine(kube, del, conf)
			res, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf)
			if err == nil || res != nil {
				t.Fatalf("Add = %v, %v; want the conversion's failure", res, err)
			}
			want := append(slices.Clone(standardOps), reverseDels...)
			if diff := cmp.Diff(want, del.ops()); diff != "" {
				t.Errorf("delegate calls (-want +got):\n%s", diff)
			}
			var coder cnicode.Coder
			if !errors.As(err, &coder) || coder.CNICode() != cnicode.IncompatibleVersion {
				t.Errorf("Add error %v, want CNI code %d", err, cnicode.IncompatibleVersion)
			}
			for _, s := range []string{"ns1/pod-1", `"cbr0"`, version} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
			if recordsOf(e).has("c1") {
				t.Error("the record survived a complete rollback")
			}
			if len(kube.patches) != 0 {
				t.Errorf("network-status written for a rolled back ADD: %v", kube.patches)
			}
			if reasons := kube.reasons(); reasons[len(reasons)-1] != "Warning/NetworkAttachmentFailed" {
				t.Errorf("events %v, want the failure reported last", reasons)
			}
		})
	}
}

// TestAddLocksItsSandbox proves that ADD holds its sandbox's lock, outside
// the records' shared lock, from before its record is written until its
// delegates are done: a DEL of the same sandbox, from another process (thin
// mode, R-7.3), waits for it and sees all of it.
func TestAddLocksItsSandbox(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	del := &fakeDelegates{}
	e := newEngine(standardKube(), del, conf)
	recs := recordsOf(e)
	del.beforeAdd = func(podnet.Sandbox, podnet.Attachment) {
		if !recs.sandboxHeld("c1") {
			t.Errorf("a delegate runs without the sandbox's lock")
		}
	}
	if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
		t.Fatalf("Add: %v", err)
	}
	ops := recs.ops()
	lock, shared, save := slices.Index(ops, "lock sandbox c1"), slices.Index(ops, "lock shared"), slices.Index(ops, "save c1")
	if lock < 0 || lock > shared || lock > save || ops[len(ops)-1] != "unlock sandbox c1" {
		t.Errorf("records calls %v, want the sandbox locked first and unlocked last", ops)
	}
}

// TestAddCallerGoneBeforeAttaching proves that an ADD whose caller went away
// before it got its sandbox (the daemon serialises a sandbox's commands, and
// the shim may give up meanwhile) attaches and records nothing.
func TestAddCallerGoneBeforeAttaching(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	del := &fakeDelegates{}
	e := newEngine(standardKube(), del, conf)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.Add(ctx, newRequest(t, request.Add, podArgs), conf); !errors.Is(err, context.Canceled) {
		t.Errorf("Add error %v, want the caller's cancellation", err)
	}
	if len(del.calls) != 0 || slices.Contains(recordsOf(e).ops(), "save c1") {
		t.Errorf("delegate calls %v, records calls %v; want none and no record", del.ops(), recordsOf(e).ops())
	}
}
