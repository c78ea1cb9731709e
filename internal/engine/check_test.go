package engine

import (
	"errors"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
)

// checkRequest builds a CHECK request for container c1 with the sandbox's netns,
// as a runtime sends it.
func checkRequest(t *testing.T) *request.Request {
	t.Helper()
	env := map[string]string{
		"CNI_CONTAINERID": "c1",
		"CNI_NETNS":       testNetNS,
		"CNI_IFNAME":      "eth0",
		"CNI_PATH":        "/opt/cni/bin",
		"CNI_ARGS":        podArgs,
	}
	req, err := request.FromEnv(request.Check, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	return req
}

// TestCheck proves that CHECK runs Check on every attachment of the sandbox's
// record, in the record's order, in the sandbox; that the first failure stops it
// and comes back as an *AttachError naming the network and interface with Op
// "checking", keeping the delegate's *types.Error (and its code) reachable.
func TestCheck(t *testing.T) {
	delegateErr := &types.Error{Code: types.ErrInvalidNetworkConfig, Msg: "address missing"}
	tests := []struct {
		name       string
		failAt     string
		wantOps    []string
		wantIfName string
	}{
		{
			name:    "every attachment checked in order",
			wantOps: []string{"CHECK cbr0 eth0", "CHECK ns1/net-a net1", "CHECK ns1/net-b net2"},
		},
		{
			name:       "first failure stops the check",
			failAt:     "ns1/net-a",
			wantOps:    []string{"CHECK cbr0 eth0", "CHECK ns1/net-a net1"},
			wantIfName: "net1",
		},
		{
			name:       "failure of the cluster network",
			failAt:     "cbr0",
			wantOps:    []string{"CHECK cbr0 eth0"},
			wantIfName: "eth0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := defaultConf(t, dir, "")
			kube := standardKube()
			del := &fakeDelegates{}
			e := newEngine(kube, del, conf)
			if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
				t.Fatalf("Add: %v", err)
			}
			// CHECK works from the record: the pod and its NADs are not needed.
			kube.pods, kube.nads = nil, nil
			del.calls = nil
			del.checkErr = map[string]error{tt.failAt: delegateErr}
			err := e.Check(t.Context(), checkRequest(t), conf)
			if diff := cmp.Diff(tt.wantOps, del.ops()); diff != "" {
				t.Errorf("delegate calls (-want +got):\n%s", diff)
			}
			for _, c := range del.calls {
				if c.ContainerID != "c1" || c.NetNS != testNetNS {
					t.Errorf("CHECK of %s in sandbox %q %q, want c1 %s", c.Network, c.ContainerID, c.NetNS, testNetNS)
				}
			}
			if tt.failAt == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			var ae *AttachError
			if !errors.As(err, &ae) {
				t.Fatalf("Check error = %v, want *AttachError", err)
			}
			if ae.Network != tt.failAt || ae.IfName != tt.wantIfName || ae.Op != "checking" || ae.Pod.String() != "ns1/pod-1" {
				t.Errorf("AttachError pod %s network %q interface %q op %q, want ns1/pod-1 %q %q checking", ae.Pod, ae.Network, ae.IfName, ae.Op, tt.failAt, tt.wantIfName)
			}
			var te *types.Error
			if !errors.As(err, &te) || te != delegateErr {
				t.Errorf("delegate's *types.Error not reachable through %v", err)
			}
		})
	}
}

// TestCheckWithoutRecord proves the CHECK failures that come before any
// delegate: no record is an *UnknownContainerError with the spec's code 3
// ("unknown container"); a record that cannot be trusted is never checked from,
// its error comes back with its code, and the record is kept.
func TestCheckWithoutRecord(t *testing.T) {
	tests := []struct {
		name     string
		corrupt  string // why c1's record cannot be trusted; "" means there is none
		wantCode uint
	}{
		{name: "no record is unknown container", wantCode: cnicode.UnknownContainer},
		{name: "corrupt record", corrupt: "does not decode: unexpected EOF", wantCode: cnicode.RecordCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := defaultConf(t, dir, "")
			del := &fakeDelegates{}
			e := newEngine(standardKube(), del, conf)
			var injected error
			if tt.corrupt != "" {
				injected = recordsOf(e).corrupt("c1", tt.corrupt)
			}
			err := e.Check(t.Context(), checkRequest(t), conf)
			if err == nil {
				t.Fatal("Check succeeded, want an error")
			}
			if len(del.calls) != 0 {
				t.Errorf("delegates called: %v", del.ops())
			}
			var coder cnicode.Coder
			if !errors.As(err, &coder) || coder.CNICode() != tt.wantCode {
				t.Errorf("CNI code of %v = %v, want %d", err, coder, tt.wantCode)
			}
			if tt.corrupt == "" {
				var uc *UnknownContainerError
				if !errors.As(err, &uc) || uc.ContainerID != "c1" {
					t.Errorf("Check error = %v, want *UnknownContainerError for c1", err)
				}
				return
			}
			if !errors.Is(err, injected) {
				t.Errorf("Check error = %v, want the records' %v", err, injected)
			}
			if !recordsOf(e).has("c1") {
				t.Error("the corrupt record was not kept")
			}
		})
	}
}

// TestCheckRecordOfAnotherContainer proves that a record whose content names
// another container, which the records refuse as corrupt, is not checked from:
// its error comes back with its code, and another container's record is left
// alone.
func TestCheckRecordOfAnotherContainer(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	del := &fakeDelegates{}
	e := newEngine(nil, del, conf)
	rec := &podnet.Record{ContainerID: "c2", IfName: "eth0", CNIVersion: "1.0.0", Created: testNow,
		Attachments: []podnet.Attachment{{Network: "cbr0", IfName: "eth0", Config: []byte(clusterDelegate)}}}
	if err := e.Records.Save(rec); err != nil {
		t.Fatal(err)
	}
	injected := recordsOf(e).corrupt("c1", `it belongs to container "c2"`)
	err := e.Check(t.Context(), checkRequest(t), conf)
	if !errors.Is(err, injected) {
		t.Errorf("Check error = %v, want the records' %v", err, injected)
	}
	var coder cnicode.Coder
	if !errors.As(err, &coder) || coder.CNICode() != cnicode.RecordCorrupt {
		t.Errorf("CNI code of %v = %v, want %d", err, coder, cnicode.RecordCorrupt)
	}
	if len(del.calls) != 0 {
		t.Errorf("delegates called: %v", del.ops())
	}
	if !recordsOf(e).has("c1") || !recordsOf(e).has("c2") {
		t.Error("a record was removed")
	}
}

// TestCheckLocksItsSandbox proves that CHECK holds its sandbox's lock while it
// reads the record and checks the attachments: a CHECK from another
// process while an ADD or DEL of the sandbox runs would otherwise check
// attachments half made or half gone, and fail a healthy pod.
func TestCheckLocksItsSandbox(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	fake := &fakeDelegates{}
	e := newEngine(standardKube(), fake, conf)
	if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
		t.Fatalf("Add: %v", err)
	}
	recs := recordsOf(e)
	recs.trace = nil
	checked := 0
	e.Delegates = &heldDuring{Delegates: fake, check: func(op string) {
		checked++
		if !recs.sandboxHeld("c1") {
			t.Errorf("%s runs without the sandbox's lock", op)
		}
	}}
	if err := e.Check(t.Context(), checkRequest(t), conf); err != nil {
		t.Fatalf("Check: %v", err)
	}
	want := []string{"lock sandbox c1", "load c1", "unlock sandbox c1"}
	if diff := cmp.Diff(want, recs.ops()); diff != "" || checked != 3 {
		t.Errorf("%d attachments checked; records calls (-want +got):\n%s", checked, diff)
	}
}
