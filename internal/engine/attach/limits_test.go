package attach

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// countingNADs is a NADGetter that counts its lookups.
type countingNADs struct {
	*fakeNADs
	calls atomic.Int64
}

func (c *countingNADs) NAD(ctx context.Context, namespace, name string) (*podnet.NAD, error) {
	c.calls.Add(1)
	return c.fakeNADs.NAD(ctx, namespace, name)
}

// TestResolveNetworkCount proves that the networks one pod may request are
// bounded by maxNetworksPerPod (32 unless set): every one costs a NAD read and
// a delegate exec, so a pod asking for more is refused (code NetworkRefused)
// before any NAD is read, with an error naming the pod, the count and the key.
// The cluster network and defaultNetworks, which the operator chose, do not
// count.
func TestResolveNetworkCount(t *testing.T) {
	const nadCount = 40
	tests := []struct {
		name    string
		extra   string
		request int
		wantErr bool
	}{
		{name: "the default allows 32", request: 32},
		{name: "the default refuses 33", request: 33, wantErr: true},
		{name: "a raised bound allows 40", extra: `,"maxNetworksPerPod":40`, request: 40},
		{name: "a lowered bound refuses 3", extra: `,"maxNetworksPerPod":2`, request: 3, wantErr: true},
		{name: "defaultNetworks do not count", extra: `,"maxNetworksPerPod":2,"clusterNetwork":"cluster","defaultNetworks":["d1","d2"]`, request: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defs := [][3]string{
				{"kube-system", "cluster", `{"cniVersion":"1.0.0","type":"bridge"}`},
				{"kube-system", "d1", `{"cniVersion":"1.0.0","type":"macvlan"}`},
				{"kube-system", "d2", `{"cniVersion":"1.0.0","type":"macvlan"}`},
			}
			var sel []string
			for i := range nadCount {
				defs = append(defs, [3]string{"ns1", fmt.Sprintf("n%d", i), `{"cniVersion":"1.0.0","type":"macvlan"}`})
				if i < tt.request {
					sel = append(sel, fmt.Sprintf("n%d@if%d", i, i))
				}
			}
			extra := tt.extra
			if !strings.Contains(extra, "clusterNetwork") {
				extra += `,"delegates":[{"name":"cbr0","type":"bridge"}]`
			}
			nadGetter := &countingNADs{fakeNADs: nads(defs...)}
			in := Input{Conf: testConf(t, t.TempDir(), extra), Req: addRequest(t, defaultArgs), Pod: testPod(),
				NADs: nadGetter, Selections: parseSel(t, strings.Join(sel, ","))}
			planned, err := Resolve(t.Context(), in)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if got := len(planned); got < tt.request+1 {
					t.Errorf("%d attachments planned, want at least %d", got, tt.request+1)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve planned %d attachments for a pod requesting %d networks, want a refusal", len(planned), tt.request)
			}
			var coder cnicode.Coder
			if !errors.As(err, &coder) || coder.CNICode() != cnicode.NetworkRefused {
				t.Errorf("CNI code of %v = %v, want %d", err, coder, cnicode.NetworkRefused)
			}
			for _, want := range []string{"ns1/pod-1", fmt.Sprint(tt.request), "maxNetworksPerPod"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
			if nadGetter.calls.Load() != 0 {
				t.Errorf("%d NAD reads before the refusal, want none", nadGetter.calls.Load())
			}
		})
	}
}
