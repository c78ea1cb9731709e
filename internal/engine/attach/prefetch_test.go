package attach

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// gatedNADs answers no read until want reads are waiting at once, so a
// resolution that reads one NAD after the other never gets an answer.
type gatedNADs struct {
	*fakeNADs
	want int

	mu      sync.Mutex
	reads   []string
	arrived chan struct{}
	open    chan struct{}
}

func newGatedNADs(f *fakeNADs, want int) *gatedNADs {
	return &gatedNADs{fakeNADs: f, want: want, arrived: make(chan struct{}, 64), open: make(chan struct{})}
}

func (g *gatedNADs) NAD(ctx context.Context, namespace, name string) (*podnet.NAD, error) {
	g.mu.Lock()
	g.reads = append(g.reads, namespace+"/"+name)
	if len(g.reads) == g.want {
		close(g.open)
	}
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-time.After(10 * time.Second):
		return nil, errors.New("reads came one at a time")
	}
	return g.fakeNADs.NAD(ctx, namespace, name)
}

// TestResolveReadsNADsTogether: the NADs of a pod's selections are read at
// once, each once however often it is selected, none the isolation check
// refuses; the attachments and the error reported are those of reading them
// one by one.
func TestResolveReadsNADsTogether(t *testing.T) {
	macvlan := `{"cniVersion":"1.0.0","type":"macvlan"}`
	defs := nads(
		[3]string{"ns1", "net-a", macvlan},
		[3]string{"ns1", "net-b", macvlan},
		[3]string{"ns1", "net-c", macvlan},
	)
	dir := t.TempDir()
	conf := testConf(t, dir, `,"delegates":[{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"}]`)

	g := newGatedNADs(defs, 3)
	in := Input{Conf: conf, Req: addRequest(t, defaultArgs), Pod: testPod(), NADs: g, Selections: parseSel(t, "net-a,net-b,net-a,net-c")}
	planned, err := Resolve(t.Context(), in)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	var got []string
	for _, p := range planned {
		got = append(got, p.Network+" "+p.IfName)
	}
	want := []string{"cbr0 eth0", "ns1/net-a net1", "ns1/net-b net2", "ns1/net-a net3", "ns1/net-c net4"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
	slices.Sort(g.reads)
	if diff := cmp.Diff([]string{"ns1/net-a", "ns1/net-b", "ns1/net-c"}, g.reads); diff != "" {
		t.Errorf("NAD reads (-want +got):\n%s", diff)
	}

	// The first missing NAD in the annotation's order is the one reported.
	in.NADs, in.Selections = defs, parseSel(t, "net-a,missing-1,missing-2")
	_, err = Resolve(t.Context(), in)
	var nf *NetworkNotFoundError
	if !errors.As(err, &nf) || nf.Network != "ns1/missing-1" {
		t.Errorf("Resolve error %v, want the NetworkNotFoundError of ns1/missing-1", err)
	}

	// A NAD the isolation check refuses is never read.
	isolated := testConf(t, dir, `,"namespaceIsolation":true,"delegates":[{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"}]`)
	g = newGatedNADs(defs, 2)
	in = Input{Conf: isolated, Req: addRequest(t, defaultArgs), Pod: testPod(), NADs: g, Selections: parseSel(t, "net-a,net-b,other/net-x")}
	var re *RefusedError
	if _, err := Resolve(t.Context(), in); !errors.As(err, &re) {
		t.Errorf("Resolve error %v, want *RefusedError", err)
	}
	if slices.Contains(g.reads, "other/net-x") {
		t.Errorf("reads %v include a NAD the isolation check refuses", g.reads)
	}
}
