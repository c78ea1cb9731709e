package selection

import (
	"encoding/json"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseJSONValid(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  []Element
	}{
		{
			name:  "R-4.1.2.1.1 name only, R-4.1.2.1.2 namespace defaults",
			value: `[{"name":"a"}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns"}},
		},
		{
			name:  "R-4.1.2.1.2 empty namespace defaults",
			value: `[{"name":"a","namespace":""}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns"}},
		},
		{
			name:  "R-4.1.2.1.2 explicit namespace",
			value: `[{"name":"a","namespace":"ns1"}]`,
			want:  []Element{{Name: "a", Namespace: "ns1"}},
		},
		{
			name:  "R-4.1.2.1.5 interface",
			value: `[{"name":"a","interface":"net1"}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns", Interface: "net1"}},
		},
		{
			name:  "R-4.1.2.1.5 empty interface means generated",
			value: `[{"name":"a","interface":""}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns"}},
		},
		{
			name:  "legacy interfaceRequest used when interface is absent",
			value: `[{"name":"a","interfaceRequest":"net2"}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns", Interface: "net2"}},
		},
		{
			name:  "legacy interfaceRequest used when interface is empty",
			value: `[{"name":"a","interface":"","interfaceRequest":"net2"}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns", Interface: "net2"}},
		},
		{
			name:  "legacy interfaceRequest ignored when interface is set",
			value: `[{"name":"a","interface":"net1","interfaceRequest":"bad/name"}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns", Interface: "net1"}},
		},
		{
			name:  "R-4.1.2.1.3 ips with addresses and CIDRs of both families",
			value: `[{"name":"a","ips":["10.1.1.1","10.2.0.5/24","fd00::1","fd00::2/64"]}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns", IPs: []string{"10.1.1.1", "10.2.0.5/24", "fd00::1", "fd00::2/64"}}},
		},
		{
			name:  "R-4.1.2.1.4 mac",
			value: `[{"name":"a","mac":"c2:b0:57:49:47:f1"}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns", MAC: "c2:b0:57:49:47:f1"}},
		},
		{
			name:  "R-4.1.2.1.10 infiniband-guid",
			value: `[{"name":"a","infiniband-guid":"c2:11:22:33:44:55:66:77"}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns", InfinibandGUID: "c2:11:22:33:44:55:66:77"}},
		},
		{
			name: "R-4.1.2.1.7 portMappings with defaults and normalised protocols",
			value: `[{"name":"a","portMappings":[
				{"hostPort":8080,"containerPort":80},
				{"hostPort":53,"containerPort":53,"protocol":"UDP","hostIP":"192.0.2.1"},
				{"hostPort":1,"containerPort":65535,"protocol":"Sctp","hostIP":""},
				{"hostPort":2,"containerPort":2,"protocol":""}]}]`,
			want: []Element{{Name: "a", Namespace: "pod-ns", PortMappings: []PortMapping{
				{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
				{HostPort: 53, ContainerPort: 53, Protocol: "udp", HostIP: "192.0.2.1"},
				{HostPort: 1, ContainerPort: 65535, Protocol: "sctp"},
				{HostPort: 2, ContainerPort: 2, Protocol: "tcp"},
			}}},
		},
		{
			name:  "R-4.1.2.1.8 bandwidth with every limit",
			value: `[{"name":"a","bandwidth":{"ingressRate":1000,"ingressBurst":200,"egressRate":3000,"egressBurst":400}}]`,
			want: []Element{{Name: "a", Namespace: "pod-ns", Bandwidth: &Bandwidth{
				IngressRate: 1000, IngressBurst: 200, EgressRate: 3000, EgressBurst: 400,
			}}},
		},
		{
			name:  "R-4.1.2.1.8 bandwidth with a rate only",
			value: `[{"name":"a","bandwidth":{"egressRate":9223372036854775807}}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns", Bandwidth: &Bandwidth{EgressRate: 9223372036854775807}}},
		},
		{
			name:  "R-4.1.2.1.6 cni-args",
			value: `[{"name":"a","cni-args":{"mode":"l2","mtu":1400,"nested":{"on":true},"list":[1,"x"]}}]`,
			want: []Element{{Name: "a", Namespace: "pod-ns", CNIArgs: map[string]any{
				"mode": "l2", "mtu": json.Number("1400"), "nested": map[string]any{"on": true}, "list": []any{json.Number("1"), "x"},
			}}},
		},
		{
			name:  "R-4.1.2.1.6 empty cni-args object is kept",
			value: `[{"name":"a","cni-args":{}}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns", CNIArgs: map[string]any{}}},
		},
		{
			name:  "R-4.1.2.1.6 null cni-args is absent",
			value: `[{"name":"a","cni-args":null}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns"}},
		},
		{
			name:  "R-4.1.2.1.9 default-route with gateways",
			value: `[{"name":"a","default-route":["10.1.1.254","fd00::1"]}]`,
			want: []Element{{
				Name: "a", Namespace: "pod-ns", HasDefaultRoute: true,
				DefaultRoute: []net.IP{net.ParseIP("10.1.1.254"), net.ParseIP("fd00::1")},
			}},
		},
		{
			name:  "R-4.1.2.1.9 empty default-route list is present",
			value: `[{"name":"a","default-route":[]}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns", HasDefaultRoute: true}},
		},
		{
			name:  "R-4.1.2.1.9 default-route on one element only",
			value: `[{"name":"a"},{"name":"b","default-route":["10.0.0.1"]},{"name":"c"}]`,
			want: []Element{
				{Name: "a", Namespace: "pod-ns"},
				{Name: "b", Namespace: "pod-ns", HasDefaultRoute: true, DefaultRoute: []net.IP{net.ParseIP("10.0.0.1")}},
				{Name: "c", Namespace: "pod-ns"},
			},
		},
		{
			name:  "R-4.1.2.1.11 ipam-claim-reference without ips",
			value: `[{"name":"a","ipam-claim-reference":"claim-1"}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns", IPAMClaimReference: "claim-1"}},
		},
		{
			name:  "R-4.1.2.1.11 empty ipam-claim-reference with ips is no conflict",
			value: `[{"name":"a","ipam-claim-reference":"","ips":["10.0.0.1"]}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns", IPs: []string{"10.0.0.1"}}},
		},
		{
			name:  "extension deviceID",
			value: `[{"name":"a","deviceID":"0000:03:00.1"}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns", DeviceID: "0000:03:00.1"}},
		},
		{
			name:  "R-4.1.2.1a unknown and reverse-DNS keys are ignored",
			value: `[{"name":"a","org.example.key":1,"futurekey":{"x":[null]},"Name":"UPPER"}]`,
			want:  []Element{{Name: "a", Namespace: "pod-ns"}},
		},
		{
			name:  "R-4.2 the same network twice keeps the annotation order",
			value: ` [ {"name":"b","interface":"net1"} , {"name":"b","namespace":"pod-ns","interface":"net2"} ] `,
			want: []Element{
				{Name: "b", Namespace: "pod-ns", Interface: "net1"},
				{Name: "b", Namespace: "pod-ns", Interface: "net2"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.value, "pod-ns")
			if err != nil {
				t.Fatalf("Parse(%s): %v", tt.value, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%s) mismatch (-want +got):\n%s", tt.value, diff)
			}
		})
	}
}

func TestParseEveryKey(t *testing.T) {
	value := `[{"name":"sriov","namespace":"ns1","interface":"net1","ips":["10.1.1.2/24"],
		"mac":"02:00:00:00:00:01","infiniband-guid":"c2:11:22:33:44:55:66:77",
		"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],
		"bandwidth":{"ingressRate":1,"ingressBurst":2},"cni-args":{"k":"v"},
		"default-route":["10.1.1.1"],"deviceID":"0000:03:00.1"}]`
	want := []Element{{
		Name: "sriov", Namespace: "ns1", Interface: "net1", IPs: []string{"10.1.1.2/24"},
		MAC: "02:00:00:00:00:01", InfinibandGUID: "c2:11:22:33:44:55:66:77",
		PortMappings: []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		Bandwidth:    &Bandwidth{IngressRate: 1, IngressBurst: 2}, CNIArgs: map[string]any{"k": "v"},
		DefaultRoute: []net.IP{net.ParseIP("10.1.1.1")}, HasDefaultRoute: true, DeviceID: "0000:03:00.1",
	}}
	got, err := Parse(value, "pod-ns")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
	if ref := got[0].Ref(); ref != "ns1/sriov" {
		t.Errorf("Ref() = %q, want %q", ref, "ns1/sriov")
	}
}

// TestEmptyMACAndGUIDMeanNotRequested keeps upstream's reading of an empty string,
// which generators write when they have nothing to ask for.
func TestEmptyMACAndGUIDMeanNotRequested(t *testing.T) {
	got, err := Parse(`[{"name":"a","mac":"","infiniband-guid":""}]`, "pod-ns")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Element{{Name: "a", Namespace: "pod-ns"}}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
