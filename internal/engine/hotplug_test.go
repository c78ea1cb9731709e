package engine

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/request"
)

// hotConf is the configuration a hot-plug controller sends.
const hotConf = `{"cniVersion":"1.0.0","name":"hot","type":"macvlan","master":"eth1"}`

// hotRequest is a hot-plug request for interface net5 of container c1.
func hotRequest(t *testing.T, command string) *request.Request {
	t.Helper()
	req := newRequest(t, command, podArgs)
	req.IfName = "net5"
	return req
}

// TestDelegateAddCallerGoneRollsBack proves that a hot-plug ADD whose caller
// goes away mid-delegate rolls back on a context of its own: the attachment
// gets a live, bounded DEL and leaves the sandbox's record.
func TestDelegateAddCallerGoneRollsBack(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	fake := &fakeDelegates{}
	del := &goneCaller{fakeDelegates: fake, cancel: cancel, cancelAt: "hot"}
	e := newEngine(standardKube(), fake, conf)
	e.Delegates = del
	if _, err := e.DelegateAdd(ctx, hotRequest(t, request.Add), conf, []byte(hotConf), nil); err == nil {
		t.Fatal("DelegateAdd succeeded although its delegate was killed")
	}
	if diff := cmp.Diff([]string{"ADD hot net5", "DEL hot net5"}, fake.ops()); diff != "" {
		t.Errorf("delegate calls (-want +got):\n%s", diff)
	}
	if want := []string{"live bounded"}; !slices.Equal(del.delCtx, want) {
		t.Errorf("rollback DEL contexts %v, want %v", del.delCtx, want)
	}
	if recordsOf(e).has("c1") {
		t.Error("the rolled back attachment is still recorded")
	}
}

// TestDelegateDelOutlivesCaller proves that a hot-plug DEL whose caller is
// gone still detaches, on a live bounded context, and forgets the attachment.
func TestDelegateDelOutlivesCaller(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	fake := &fakeDelegates{}
	e := newEngine(standardKube(), fake, conf)
	if _, err := e.DelegateAdd(t.Context(), hotRequest(t, request.Add), conf, []byte(hotConf), nil); err != nil {
		t.Fatalf("DelegateAdd: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	del := &goneCaller{fakeDelegates: fake, cancel: cancel}
	e.Delegates = del
	if err := e.DelegateDel(ctx, hotRequest(t, request.Del), conf, []byte(hotConf)); err != nil {
		t.Fatalf("DelegateDel: %v", err)
	}
	if want := []string{"live bounded"}; !slices.Equal(del.delCtx, want) {
		t.Errorf("DEL contexts %v, want %v", del.delCtx, want)
	}
	if recordsOf(e).has("c1") {
		t.Error("the detached attachment is still recorded")
	}
}

// TestDelegateCommandsLock proves that hot-plug ADD and DEL hold the sandbox's
// lock and, inside it, the records' lock shared while the delegate runs and the
// record changes: the sandbox's own commands and GC are kept out, as for ADD
// and DEL (TestAddLocksItsSandbox, TestDelLocks).
func TestDelegateCommandsLock(t *testing.T) {
	dir := t.TempDir()
	conf := defaultConf(t, dir, "")
	fake := &fakeDelegates{}
	e := newEngine(standardKube(), fake, conf)
	recs := recordsOf(e)
	e.Delegates = &heldDuring{Delegates: fake, check: func(op string) {
		if shared, exclusive := recs.held(); shared != 1 || exclusive != 0 || !recs.sandboxHeld("c1") {
			t.Errorf("%s runs holding %d shared, %d exclusive, sandbox %v; want the sandbox's lock and 1 shared", op, shared, exclusive, recs.sandboxHeld("c1"))
		}
	}}
	if _, err := e.DelegateAdd(t.Context(), hotRequest(t, request.Add), conf, []byte(hotConf), nil); err != nil {
		t.Fatalf("DelegateAdd: %v", err)
	}
	want := []string{"lock sandbox c1", "lock shared", "load c1", "save c1", "unlock shared", "unlock sandbox c1"}
	if diff := cmp.Diff(want, recs.ops()); diff != "" {
		t.Errorf("DelegateAdd's records calls (-want +got):\n%s", diff)
	}
	recs.trace = nil
	if err := e.DelegateDel(t.Context(), hotRequest(t, request.Del), conf, []byte(hotConf)); err != nil {
		t.Fatalf("DelegateDel: %v", err)
	}
	want = []string{"lock sandbox c1", "lock shared", "load c1", "load c1", "remove c1", "unlock shared", "unlock sandbox c1"}
	if diff := cmp.Diff(want, recs.ops()); diff != "" {
		t.Errorf("DelegateDel's records calls (-want +got):\n%s", diff)
	}
}

// TestDelegateAddLateFailureRollsBack proves that a hot-plug ADD whose result
// cannot be given in the configuration's version (no address, CNI 0.2.0) is
// rolled back, as ADD's late failures are (TestAddLateFailureRollsBack).
func TestDelegateAddLateFailureRollsBack(t *testing.T) {
	dir := t.TempDir()
	conf := testConf(t, dir, "0.2.0", `,"delegates":[`+clusterDelegate+`]`)
	noAddress := &current.Result{CNIVersion: "1.0.0", Interfaces: []*current.Interface{{Name: "net5", Sandbox: testNetNS}}}
	fake := &fakeDelegates{results: map[string]types.Result{"hot": noAddress}}
	e := newEngine(standardKube(), fake, conf)
	_, err := e.DelegateAdd(t.Context(), hotRequest(t, request.Add), conf, []byte(hotConf), nil)
	var coder cnicode.Coder
	if !errors.As(err, &coder) || coder.CNICode() != cnicode.IncompatibleVersion {
		t.Errorf("DelegateAdd error %v, want CNI code %d", err, cnicode.IncompatibleVersion)
	}
	if diff := cmp.Diff([]string{"ADD hot net5", "DEL hot net5"}, fake.ops()); diff != "" {
		t.Errorf("delegate calls (-want +got):\n%s", diff)
	}
	if recordsOf(e).has("c1") {
		t.Error("the rolled back attachment is still recorded")
	}
}
