package netstatus

import (
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	types020 "github.com/containernetworking/cni/pkg/types/020"
	"github.com/google/go-cmp/cmp"
)

// legacyCase is one case of TestFromResultLegacy.
type legacyCase struct {
	name      string
	ifName    string
	isDefault bool
	result    *types020.Result
	want      Entry
}

// legacyCases is the table of TestFromResultLegacy.
var legacyCases = []legacyCase{
	{
		name:      "R-5.3.2 0.2.0 dual stack with DNS and routes",
		ifName:    "eth0",
		isDefault: true,
		result: &types020.Result{
			CNIVersion: "0.2.0",
			IP4: &types020.IPConfig{
				IP:      cidr("10.4.0.7/24"),
				Gateway: ip("10.4.0.1"),
				Routes: []types.Route{
					{Dst: cidr("10.96.0.0/12"), GW: ip("10.4.0.254")},
					{Dst: cidr("0.0.0.0/0")},
				},
			},
			IP6: &types020.IPConfig{
				IP:     cidr("fd04::7/64"),
				Routes: []types.Route{{Dst: cidr("::/0"), GW: ip("fd04::1")}},
			},
			DNS: types.DNS{Nameservers: []string{"10.96.0.10"}, Search: []string{"svc.cluster.local"}},
		},
		want: Entry{
			Name:      testNetwork,
			Interface: "eth0",
			IPs:       []string{"10.4.0.7", "fd04::7"},
			Default:   true,
			DNS:       &DNS{Nameservers: []string{"10.96.0.10"}, Search: []string{"svc.cluster.local"}},
			Gateway:   []string{"10.4.0.1", "fd04::1"},
		},
	},
	{
		name:   "R-5.3.3 0.1.0 IPv4 only without routes",
		ifName: "net1",
		result: &types020.Result{
			CNIVersion: "0.1.0",
			IP4:        &types020.IPConfig{IP: cidr("192.168.5.3/24"), Gateway: ip("192.168.5.1")},
		},
		want: Entry{Name: testNetwork, Interface: "net1", IPs: []string{"192.168.5.3"}},
	},
	{
		name:   "R-5.3.3 0.2.0 IPv6 only default route without any gateway",
		ifName: "net1",
		result: &types020.Result{
			CNIVersion: "0.2.0",
			IP6: &types020.IPConfig{
				IP:     cidr("fd05::3/64"),
				Routes: []types.Route{{Dst: cidr("::/0")}},
			},
		},
		want: Entry{Name: testNetwork, Interface: "net1", IPs: []string{"fd05::3"}},
	},
	{
		name:   "R-5.3.6 0.1.0 DNS absent",
		ifName: "net1",
		result: &types020.Result{
			CNIVersion: "0.1.0",
			IP6:        &types020.IPConfig{IP: cidr("fd06::3/64"), Gateway: ip("fd06::1")},
			DNS:        types.DNS{},
		},
		want: Entry{Name: testNetwork, Interface: "net1", IPs: []string{"fd06::3"}},
	},
}

// TestFromResultLegacy covers results shaped like CNI 0.1.0 and 0.2.0, which
// carry at most one address per family, no interfaces and per-family routes.
func TestFromResultLegacy(t *testing.T) {
	for _, tc := range legacyCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromResult(tc.result, testNetwork, tc.ifName, tc.isDefault)
			if err != nil {
				t.Fatalf("FromResult() error = %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("FromResult() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
