package selection

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  string
	}{
		{
			name:  "R-4.1.2.1.3 bad address names element, network, field and requirement",
			value: `[{"name":"a"},{"name":"macvlan","namespace":"ns1","ips":["10.1.1.300"]}]`,
			want:  `networks annotation: element 1 (network "ns1/macvlan"): field "ips": "10.1.1.300" is not an IP address or CIDR (R-4.1.2.1.3)`,
		},
		{
			name:  "R-4.1.2.1.4 wrong type has no value",
			value: `[{"name":"a","mac":12}]`,
			want:  `networks annotation: element 0 (network "pod-ns/a"): field "mac": want a string (R-4.1.2.1.4)`,
		},
		{
			name:  "R-4.1.2 whole value at fault has no element",
			value: `{"name":"a"}`,
			want:  `networks annotation: value is not a JSON array of objects (R-4.1.2)`,
		},
		{
			name:  "R-4.1.2.1.1 missing name has no network",
			value: `[{"interface":"net1"}]`,
			want:  `networks annotation: element 0: field "name": must be present (R-4.1.2.1.1)`,
		},
		{
			name:  "R-4.1.2.1.7 nested key has a path",
			value: `[{"name":"a","portMappings":[{"hostPort":1,"containerPort":2,"protocol":"ICMP"}]}]`,
			want:  `networks annotation: element 0 (network "pod-ns/a"): field "portMappings[0].protocol": "ICMP" is not TCP, UDP or SCTP (R-4.1.2.1.7)`,
		},
		{
			name:  "R-4.1.2.1.9 second default-route names the first",
			value: `[{"name":"a","default-route":[]},{"name":"b","default-route":[]}]`,
			want:  `networks annotation: element 1 (network "pod-ns/b"): field "default-route": is also set by element 0; at most one element may set it (R-4.1.2.1.9)`,
		},
		{
			name:  "R-4.1.1 comma form syntax",
			value: "a, ns/b@x@y",
			want:  `networks annotation: element 1: "ns/b@x@y" has more than one '@'; want [namespace/]name[@interface] (R-4.1.1)`,
		},
		{
			name:  "extension key cites no requirement",
			value: `[{"name":"a","deviceID":1}]`,
			want:  `networks annotation: element 0 (network "pod-ns/a"): field "deviceID": want a string`,
		},
		{
			name:  "R-4.1.2.1.11 conflict",
			value: `[{"name":"a","ips":["10.0.0.1"],"ipam-claim-reference":"claim"}]`,
			want:  `networks annotation: element 0 (network "pod-ns/a"): fields "ips" and "ipam-claim-reference" must not be used together (R-4.1.2.1.11)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.value, "pod-ns")
			if err == nil {
				t.Fatalf("Parse(%s) succeeded, want error", tt.value)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("message mismatch\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func TestConflict(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  *ConflictError
	}{
		{
			name:  "R-4.1.2.1.11 ips with ipam-claim-reference",
			value: `[{"name":"a"},{"name":"b","namespace":"ns1","ips":["10.0.0.1/24"],"ipam-claim-reference":"c"}]`,
			want:  &ConflictError{Index: 1, Network: "ns1/b", Fields: []string{"ips", "ipam-claim-reference"}, Requirement: "R-4.1.2.1.11"},
		},
		{
			name:  "R-4.1.2 an earlier invalid element is reported before a later conflict",
			value: `[{"name":"A"},{"name":"b","ips":["10.0.0.1"],"ipam-claim-reference":"c"}]`,
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.value, "pod-ns")
			if got != nil {
				t.Errorf("Parse returned elements %v with an error", got)
			}
			var conflict *ConflictError
			if !errors.As(err, &conflict) {
				conflict = nil
			}
			if diff := cmp.Diff(tt.want, conflict); diff != "" {
				t.Errorf("ConflictError mismatch (-want +got):\n%s\nerror: %v", diff, err)
			}
			var invalid *InvalidError
			if tt.want != nil && errors.As(err, &invalid) {
				t.Errorf("a conflict must not be an InvalidError: %v", err)
			}
		})
	}
}
