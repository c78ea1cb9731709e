package netstatus

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/go-cmp/cmp"
)

// convertedVersions are the result versions every case of
// TestFromResultAcrossVersions is converted to before calling FromResult.
var convertedVersions = []string{"1.0.0", "1.1.0", "0.4.0", "0.3.1"}

// versionCase is one case of TestFromResultAcrossVersions.
type versionCase struct {
	name      string
	ifName    string
	isDefault bool
	// result builds a fresh result for each version; FromResult sees it
	// after conversion from 1.0.0 with GetAsVersion.
	result func() *types100.Result
	// want is the entry for 1.x; results before 1.0.0 carry no MTU, so Mtu
	// is expected to be zero for them.
	want Entry
}

// versionCases is the table of TestFromResultAcrossVersions.
var versionCases = []versionCase{
	{
		name:   "R-5.3.3 single sandbox interface dual stack with MTU",
		ifName: "net1",
		result: func() *types100.Result {
			return &types100.Result{
				Interfaces: []*types100.Interface{podIf("net1", "0a:58:0a:80:00:05", 1400)},
				IPs: []*types100.IPConfig{
					ipc("10.128.0.5/24", "10.128.0.1", types100.Int(0)),
					ipc("fd00::5/64", "fd00::1", types100.Int(0)),
				},
			}
		},
		want: Entry{Name: testNetwork, Interface: "net1", Mac: "0a:58:0a:80:00:05", Mtu: 1400,
			IPs: []string{"10.128.0.5", "fd00::5"}},
	},
	{
		name:   "R-5.1.1 host veth first then pod interface",
		ifName: "net1",
		result: func() *types100.Result {
			return &types100.Result{
				Interfaces: []*types100.Interface{
					hostIf("veth1234", "aa:aa:aa:aa:aa:aa"),
					podIf("net1", "bb:bb:bb:bb:bb:bb", 9000),
				},
				IPs: []*types100.IPConfig{
					ipc("169.254.1.1/32", "", types100.Int(0)),
					ipc("192.168.1.10/24", "192.168.1.1", types100.Int(1)),
				},
			}
		},
		want: Entry{Name: testNetwork, Interface: "net1", Mac: "bb:bb:bb:bb:bb:bb", Mtu: 9000,
			IPs: []string{"192.168.1.10"}},
	},
	{
		name:   "R-5.1.1 two sandbox interfaces CNI_IFNAME one chosen",
		ifName: "net1",
		result: func() *types100.Result {
			return &types100.Result{
				Interfaces: []*types100.Interface{
					podIf("tap0", "cc:cc:cc:cc:cc:cc", 0),
					podIf("net1", "dd:dd:dd:dd:dd:dd", 0),
				},
				IPs: []*types100.IPConfig{
					ipc("10.0.0.9/24", "", types100.Int(0)),
					ipc("10.0.1.9/24", "", types100.Int(1)),
				},
			}
		},
		want: Entry{Name: testNetwork, Interface: "net1", Mac: "dd:dd:dd:dd:dd:dd",
			IPs: []string{"10.0.1.9"}},
	},
	{
		name:   "R-5.1.1 no sandbox interface named CNI_IFNAME first sandbox one chosen",
		ifName: "net1",
		result: func() *types100.Result {
			return &types100.Result{
				Interfaces: []*types100.Interface{
					hostIf("net1", "ee:ee:ee:ee:ee:ee"),
					podIf("eth7", "11:11:11:11:11:11", 1500),
					podIf("eth8", "22:22:22:22:22:22", 1500),
				},
				IPs: []*types100.IPConfig{
					ipc("10.5.0.7/24", "", types100.Int(1)),
					ipc("10.5.0.8/24", "", types100.Int(2)),
				},
			}
		},
		want: Entry{Name: testNetwork, Interface: "eth7", Mac: "11:11:11:11:11:11", Mtu: 1500,
			IPs: []string{"10.5.0.7"}},
	},
	{
		name:   "R-5.3.3 unindexed IPs not reported for a chosen sandbox interface",
		ifName: "net1",
		result: func() *types100.Result {
			return &types100.Result{
				Interfaces: []*types100.Interface{podIf("net1", "66:66:66:66:66:66", 0)},
				IPs: []*types100.IPConfig{
					ipc("10.8.0.2/24", "", nil),
					ipc("10.8.0.3/24", "", types100.Int(0)),
				},
			}
		},
		want: Entry{Name: testNetwork, Interface: "net1", Mac: "66:66:66:66:66:66",
			IPs: []string{"10.8.0.3"}},
	},
	{
		name:   "R-5.3.2 no interfaces uses CNI_IFNAME and unindexed IPs",
		ifName: "net2",
		result: func() *types100.Result {
			return &types100.Result{
				IPs: []*types100.IPConfig{
					ipc("10.1.0.4/16", "10.1.0.1", nil),
					ipc("fd01::4/64", "", types100.Int(-1)),
				},
			}
		},
		want: Entry{Name: testNetwork, Interface: "net2", IPs: []string{"10.1.0.4", "fd01::4"}},
	},
	{
		name:   "R-5.3.3 only host interfaces keeps unindexed IPs only",
		ifName: "net2",
		result: func() *types100.Result {
			return &types100.Result{
				Interfaces: []*types100.Interface{hostIf("br0", "33:33:33:33:33:33")},
				IPs: []*types100.IPConfig{
					ipc("10.2.0.2/24", "", nil),
					ipc("10.2.0.3/24", "", types100.Int(0)),
				},
			}
		},
		want: Entry{Name: testNetwork, Interface: "net2", IPs: []string{"10.2.0.2"}},
	},
	{
		name:   "R-5.3.2 empty result gives minimal entry",
		ifName: "net3",
		result: func() *types100.Result { return &types100.Result{} },
		want:   Entry{Name: testNetwork, Interface: "net3"},
	},
	{
		name:      "R-5.3.5 default network",
		ifName:    "eth0",
		isDefault: true,
		result: func() *types100.Result {
			return &types100.Result{
				Interfaces: []*types100.Interface{podIf("eth0", "44:44:44:44:44:44", 0)},
				IPs:        []*types100.IPConfig{ipc("10.244.1.3/24", "", types100.Int(0))},
			}
		},
		want: Entry{Name: testNetwork, Interface: "eth0", Mac: "44:44:44:44:44:44",
			IPs: []string{"10.244.1.3"}, Default: true},
	},
	{
		name:   "R-5.3.6 DNS present",
		ifName: "net1",
		result: func() *types100.Result {
			return &types100.Result{DNS: types.DNS{
				Nameservers: []string{"10.96.0.10", "fd00::a"},
				Domain:      "cluster.local",
				Search:      []string{"ns1.svc.cluster.local", "svc.cluster.local"},
				Options:     []string{"ndots:5"},
			}}
		},
		want: Entry{Name: testNetwork, Interface: "net1", DNS: &DNS{
			Nameservers: []string{"10.96.0.10", "fd00::a"},
			Domain:      "cluster.local",
			Search:      []string{"ns1.svc.cluster.local", "svc.cluster.local"},
			Options:     []string{"ndots:5"},
		}},
	},
	{
		name:   "R-5.3.6 DNS with only options",
		ifName: "net1",
		result: func() *types100.Result {
			return &types100.Result{DNS: types.DNS{Options: []string{"rotate"}}}
		},
		want: Entry{Name: testNetwork, Interface: "net1", DNS: &DNS{Options: []string{"rotate"}}},
	},
	{
		name:   "gateway from default routes in both families without duplicates",
		ifName: "net1",
		result: func() *types100.Result {
			return &types100.Result{
				Interfaces: []*types100.Interface{podIf("net1", "", 0)},
				IPs: []*types100.IPConfig{
					ipc("10.0.0.5/24", "10.0.0.254", types100.Int(0)),
					ipc("fd00::5/64", "", types100.Int(0)),
				},
				Routes: []*types.Route{
					route("10.96.0.0/12", "10.0.0.253"),
					route("0.0.0.0/0", "10.0.0.1"),
					route("fd00:1::/64", "fd00::fe"),
					route("::/0", "fd00::1"),
					route("0.0.0.0/0", "10.0.0.1"),
				},
			}
		},
		want: Entry{Name: testNetwork, Interface: "net1", IPs: []string{"10.0.0.5", "fd00::5"},
			Gateway: []string{"10.0.0.1", "fd00::1"}},
	},
	{
		name:   "gateway of default route without next hop from own IP of same family",
		ifName: "net1",
		result: func() *types100.Result {
			return &types100.Result{
				Interfaces: []*types100.Interface{podIf("net1", "", 0), podIf("net9", "", 0)},
				IPs: []*types100.IPConfig{
					ipc("10.9.0.5/24", "10.9.0.1", types100.Int(1)),
					ipc("10.0.0.5/24", "", types100.Int(0)),
					ipc("10.0.1.5/24", "10.0.1.1", types100.Int(0)),
					ipc("fd00::5/64", "fd00::1", types100.Int(0)),
				},
				Routes: []*types.Route{route("::/0", ""), route("0.0.0.0/0", "")},
			}
		},
		want: Entry{Name: testNetwork, Interface: "net1",
			IPs:     []string{"10.0.0.5", "10.0.1.5", "fd00::5"},
			Gateway: []string{"fd00::1", "10.0.1.1"}},
	},
	{
		name:   "default route without next hop and no gateway of its family is skipped",
		ifName: "net1",
		result: func() *types100.Result {
			return &types100.Result{
				Interfaces: []*types100.Interface{podIf("net1", "", 0)},
				IPs:        []*types100.IPConfig{ipc("10.0.0.5/24", "10.0.0.1", types100.Int(0))},
				Routes:     []*types.Route{route("::/0", ""), route("10.0.0.0/8", "")},
			}
		},
		want: Entry{Name: testNetwork, Interface: "net1", IPs: []string{"10.0.0.5"}},
	},
	{
		name:   "gateway of default route without next hop from unindexed IP when no interface",
		ifName: "net1",
		result: func() *types100.Result {
			return &types100.Result{
				IPs:    []*types100.IPConfig{ipc("10.3.0.4/16", "10.3.0.1", nil)},
				Routes: []*types.Route{route("0.0.0.0/0", "")},
			}
		},
		want: Entry{Name: testNetwork, Interface: "net1", IPs: []string{"10.3.0.4"},
			Gateway: []string{"10.3.0.1"}},
	},
	{
		name:   "non-default routes give no gateway",
		ifName: "net1",
		result: func() *types100.Result {
			return &types100.Result{
				IPs:    []*types100.IPConfig{ipc("10.3.0.4/16", "10.3.0.1", nil)},
				Routes: []*types.Route{route("10.0.0.0/8", "10.3.0.1"), route("0.0.0.0/1", "10.3.0.2")},
			}
		},
		want: Entry{Name: testNetwork, Interface: "net1", IPs: []string{"10.3.0.4"}},
	},
	{
		name:   "R-5.3.3 out-of-range interface index ignored with sandbox interface",
		ifName: "net1",
		result: func() *types100.Result {
			return &types100.Result{
				Interfaces: []*types100.Interface{podIf("net1", "55:55:55:55:55:55", 0)},
				IPs: []*types100.IPConfig{
					ipc("10.7.0.2/24", "", types100.Int(0)),
					ipc("10.7.0.3/24", "10.7.0.1", types100.Int(5)),
				},
				Routes: []*types.Route{route("0.0.0.0/0", "")},
			}
		},
		want: Entry{Name: testNetwork, Interface: "net1", Mac: "55:55:55:55:55:55",
			IPs: []string{"10.7.0.2"}},
	},
	{
		name:   "R-5.3.3 out-of-range interface index ignored without interfaces",
		ifName: "net1",
		result: func() *types100.Result {
			return &types100.Result{
				IPs: []*types100.IPConfig{
					ipc("10.7.0.3/24", "", types100.Int(3)),
					ipc("10.7.0.4/24", "", nil),
				},
			}
		},
		want: Entry{Name: testNetwork, Interface: "net1", IPs: []string{"10.7.0.4"}},
	},
}

func TestFromResultAcrossVersions(t *testing.T) {
	for _, tc := range versionCases {
		t.Run(tc.name, func(t *testing.T) {
			for _, version := range convertedVersions {
				t.Run(version, func(t *testing.T) {
					res := tc.result()
					res.CNIVersion = "1.0.0"
					converted, err := res.GetAsVersion(version)
					if err != nil {
						t.Fatalf("GetAsVersion(%q): %v", version, err)
					}
					got, err := FromResult(converted, testNetwork, tc.ifName, tc.isDefault)
					if err != nil {
						t.Fatalf("FromResult() error = %v", err)
					}
					want := tc.want
					if strings.HasPrefix(version, "0.") {
						want.Mtu = 0
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("FromResult() mismatch (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

func TestFromResultNil(t *testing.T) {
	tests := []struct {
		name      string
		result    types.Result
		isDefault bool
	}{
		{name: "untyped nil", result: nil},
		{name: "untyped nil default network", result: nil, isDefault: true},
		{name: "typed nil current result", result: (*types100.Result)(nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromResult(tc.result, testNetwork, "net1", tc.isDefault)
			if err != nil {
				t.Fatalf("FromResult() error = %v", err)
			}
			want := Entry{Name: testNetwork, Interface: "net1", Default: tc.isDefault}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("FromResult() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// futureResult is a result of a version the CNI library cannot convert.
type futureResult struct{}

func (futureResult) Version() string { return "9.9.9" }

func (futureResult) GetAsVersion(string) (types.Result, error) {
	return nil, errors.New("unsupported")
}

func (futureResult) Print() error { return nil }

func (futureResult) PrintTo(io.Writer) error { return nil }

func TestFromResultUnconvertible(t *testing.T) {
	tests := []struct {
		name   string
		result types.Result
	}{
		{name: "unknown version", result: futureResult{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromResult(tc.result, testNetwork, "net1", false)
			if err == nil {
				t.Fatalf("FromResult() = %+v, want error", got)
			}
			if !strings.Contains(err.Error(), "9.9.9") {
				t.Errorf("FromResult() error = %q, want it to name the version", err)
			}
		})
	}
}
