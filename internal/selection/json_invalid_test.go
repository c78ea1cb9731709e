package selection

import (
	"testing"
)

func TestParseJSONInvalid(t *testing.T) {
	const n = "pod-ns/a" // the network of most elements below
	tests := []struct {
		name  string
		value string
		want  wantInvalid
	}{
		// The value as a whole.
		{"R-4.1.2 single object instead of array", `{"name":"a"}`, wantInvalid{Index: -1, Requirement: "R-4.1.2"}},
		{"R-4.1.2 JSON string", `"a"`, wantInvalid{Index: -1, Requirement: "R-4.1.2"}},
		{"R-4.1.2 invalid JSON", `[{"name":"a"`, wantInvalid{Index: -1, Requirement: "R-4.1.2"}},
		{"R-4.1.2 trailing data", `[{"name":"a"}] x`, wantInvalid{Index: -1, Requirement: "R-4.1.2"}},
		{"R-4.1.2 two arrays", `[] []`, wantInvalid{Index: -1, Requirement: "R-4.1.2"}},
		{"R-4.1.2 comma form mixed with JSON", `a, {"name":"b"}`, wantInvalid{Index: -1, Requirement: "R-4.1.2"}},
		{"R-4.1.2 null element", `[{"name":"a"},null]`, wantInvalid{Index: 1, Requirement: "R-4.1.2"}},
		{"R-4.1.2 string element", `["a"]`, wantInvalid{Index: 0, Requirement: "R-4.1.2"}},
		{"R-4.1.2 array element", `[[{"name":"a"}]]`, wantInvalid{Index: 0, Requirement: "R-4.1.2"}},

		// name and namespace.
		{"R-4.1.2.1.1 name missing", `[{"namespace":"ns1"}]`, wantInvalid{Field: "name", Requirement: "R-4.1.2.1.1"}},
		{"R-4.1.2.1.1 name not a string", `[{"name":1}]`, wantInvalid{Field: "name", Requirement: "R-4.1.2.1.1"}},
		{"R-4.1.2.1.1 name null", `[{"name":null}]`, wantInvalid{Field: "name", Requirement: "R-4.1.2.1.1"}},
		{"R-3.3 name empty", `[{"name":""}]`, wantInvalid{Field: "name", Requirement: "R-3.3"}},
		{"R-3.3 name upper case", `[{"name":"A"}]`, wantInvalid{Field: "name", Value: "A", Requirement: "R-3.3"}},
		{"R-3.3 name with slash", `[{"name":"ns/a"}]`, wantInvalid{Field: "name", Value: "ns/a", Requirement: "R-3.3"}},
		{"R-4.1.2.1.2 namespace not a string", `[{"name":"a","namespace":["x"]}]`, wantInvalid{Field: "namespace", Requirement: "R-4.1.2.1.2"}},
		{"R-3.3 namespace with underscore", `[{"name":"a","namespace":"my_ns"}]`, wantInvalid{Field: "namespace", Value: "my_ns", Requirement: "R-3.3"}},

		// interface.
		{"R-4.1.2.1.5 interface not a string", `[{"name":"a","interface":1}]`, wantInvalid{Network: n, Field: "interface", Requirement: "R-4.1.2.1.5"}},
		{"R-4.1.2.1.5 interface too long", `[{"name":"a","interface":"abcdefghijklmnop"}]`, wantInvalid{Network: n, Field: "interface", Value: "abcdefghijklmnop", Requirement: "R-4.1.2.1.5"}},
		{"R-4.1.2.1.5 interface dot", `[{"name":"a","interface":"."}]`, wantInvalid{Network: n, Field: "interface", Value: ".", Requirement: "R-4.1.2.1.5"}},
		{"R-4.1.2.1.5 interface with NUL", `[{"name":"a","interface":"a\u0000b"}]`, wantInvalid{Network: n, Field: "interface", Value: "a\x00b", Requirement: "R-4.1.2.1.5"}},
		{"R-4.1.2.1.5 interface with tab", `[{"name":"a","interface":"a\tb"}]`, wantInvalid{Network: n, Field: "interface", Value: "a\tb", Requirement: "R-4.1.2.1.5"}},
		{"R-4.1.2.1.5 interfaceRequest invalid", `[{"name":"a","interfaceRequest":"x/y"}]`, wantInvalid{Network: n, Field: "interfaceRequest", Value: "x/y", Requirement: "R-4.1.2.1.5"}},
		{"R-4.1.2.1.5 interfaceRequest not a string", `[{"name":"a","interface":"","interfaceRequest":true}]`, wantInvalid{Network: n, Field: "interfaceRequest", Requirement: "R-4.1.2.1.5"}},

		// ips.
		{"R-4.1.2.1.3 ips must not be empty", `[{"name":"a","ips":[]}]`, wantInvalid{Network: n, Field: "ips", Requirement: "R-4.1.2.1.3"}},
		{"R-4.1.2.1.3 ips not an array", `[{"name":"a","ips":"10.0.0.1"}]`, wantInvalid{Network: n, Field: "ips", Requirement: "R-4.1.2.1.3"}},
		{"R-4.1.2.1.3 ips null", `[{"name":"a","ips":null}]`, wantInvalid{Network: n, Field: "ips", Requirement: "R-4.1.2.1.3"}},
		{"R-4.1.2.1.3 ips with a number", `[{"name":"a","ips":[10]}]`, wantInvalid{Network: n, Field: "ips", Requirement: "R-4.1.2.1.3"}},
		{"R-4.1.2.1.3 ips with null item", `[{"name":"a","ips":[null]}]`, wantInvalid{Network: n, Field: "ips", Requirement: "R-4.1.2.1.3"}},
		{"R-4.1.2.1.3 ips with empty string", `[{"name":"a","ips":[""]}]`, wantInvalid{Network: n, Field: "ips", Requirement: "R-4.1.2.1.3"}},
		{"R-4.1.2.1.3 ips bad address", `[{"name":"a","ips":["10.0.0.1","10.1.1.300"]}]`, wantInvalid{Network: n, Field: "ips", Value: "10.1.1.300", Requirement: "R-4.1.2.1.3"}},
		{"R-4.1.2.1.3 ips bad prefix", `[{"name":"a","ips":["10.0.0.1/33"]}]`, wantInvalid{Network: n, Field: "ips", Value: "10.0.0.1/33", Requirement: "R-4.1.2.1.3"}},

		// mac and infiniband-guid.
		{"R-4.1.2.1.4 mac not a string", `[{"name":"a","mac":12}]`, wantInvalid{Network: n, Field: "mac", Requirement: "R-4.1.2.1.4"}},
		{"R-4.1.2.1.4 mac garbage", `[{"name":"a","mac":"zz:00:00:00:00:01"}]`, wantInvalid{Network: n, Field: "mac", Value: "zz:00:00:00:00:01", Requirement: "R-4.1.2.1.4"}},
		{"R-4.1.2.1.4 mac of 8 bytes", `[{"name":"a","mac":"c2:11:22:33:44:55:66:77"}]`, wantInvalid{Network: n, Field: "mac", Value: "c2:11:22:33:44:55:66:77", Requirement: "R-4.1.2.1.4"}},
		{"R-4.1.2.1.10 guid not a string", `[{"name":"a","infiniband-guid":[]}]`, wantInvalid{Network: n, Field: "infiniband-guid", Requirement: "R-4.1.2.1.10"}},
		{"R-4.1.2.1.10 guid of 6 bytes", `[{"name":"a","infiniband-guid":"c2:b0:57:49:47:f1"}]`, wantInvalid{Network: n, Field: "infiniband-guid", Value: "c2:b0:57:49:47:f1", Requirement: "R-4.1.2.1.10"}},

		// portMappings.
		{"R-4.1.2.1.7 portMappings must not be empty", `[{"name":"a","portMappings":[]}]`, wantInvalid{Network: n, Field: "portMappings", Requirement: "R-4.1.2.1.7"}},
		{"R-4.1.2.1.7 portMappings not an array", `[{"name":"a","portMappings":{"hostPort":1,"containerPort":1}}]`, wantInvalid{Network: n, Field: "portMappings", Requirement: "R-4.1.2.1.7"}},
		{"R-4.1.2.1.7 portMappings null item", `[{"name":"a","portMappings":[null]}]`, wantInvalid{Network: n, Field: "portMappings[0]", Requirement: "R-4.1.2.1.7"}},
		{"R-4.1.2.1.7 hostPort missing", `[{"name":"a","portMappings":[{"containerPort":80}]}]`, wantInvalid{Network: n, Field: "portMappings[0].hostPort", Requirement: "R-4.1.2.1.7"}},
		{"R-4.1.2.1.7 containerPort missing", `[{"name":"a","portMappings":[{"hostPort":80}]}]`, wantInvalid{Network: n, Field: "portMappings[0].containerPort", Requirement: "R-4.1.2.1.7"}},
		{"R-4.1.2.1.7 port as float", `[{"name":"a","portMappings":[{"hostPort":80.5,"containerPort":80}]}]`, wantInvalid{Network: n, Field: "portMappings[0].hostPort", Requirement: "R-4.1.2.1.7"}},
		{"R-4.1.2.1.7 port as string", `[{"name":"a","portMappings":[{"hostPort":80,"containerPort":"80"}]}]`, wantInvalid{Network: n, Field: "portMappings[0].containerPort", Requirement: "R-4.1.2.1.7"}},
		{"R-4.1.2.1.7 port zero", `[{"name":"a","portMappings":[{"hostPort":0,"containerPort":80}]}]`, wantInvalid{Network: n, Field: "portMappings[0].hostPort", Value: "0", Requirement: "R-4.1.2.1.7"}},
		{"R-4.1.2.1.7 port too large", `[{"name":"a","portMappings":[{"hostPort":1,"containerPort":1},{"hostPort":1,"containerPort":65536}]}]`, wantInvalid{Network: n, Field: "portMappings[1].containerPort", Value: "65536", Requirement: "R-4.1.2.1.7"}},
		{"R-4.1.2.1.7 bad protocol", `[{"name":"a","portMappings":[{"hostPort":1,"containerPort":1,"protocol":"icmp"}]}]`, wantInvalid{Network: n, Field: "portMappings[0].protocol", Value: "icmp", Requirement: "R-4.1.2.1.7"}},
		{"R-4.1.2.1.7 protocol not a string", `[{"name":"a","portMappings":[{"hostPort":1,"containerPort":1,"protocol":6}]}]`, wantInvalid{Network: n, Field: "portMappings[0].protocol", Requirement: "R-4.1.2.1.7"}},
		{"R-4.1.2.1.7 hostIP not a string", `[{"name":"a","portMappings":[{"hostPort":1,"containerPort":1,"hostIP":null}]}]`, wantInvalid{Network: n, Field: "portMappings[0].hostIP", Requirement: "R-4.1.2.1.7"}},
		{"R-4.1.2.1.7 bad hostIP", `[{"name":"a","portMappings":[{"hostPort":1,"containerPort":1,"hostIP":"10.0.0.0/8"}]}]`, wantInvalid{Network: n, Field: "portMappings[0].hostIP", Value: "10.0.0.0/8", Requirement: "R-4.1.2.1.7"}},

		// bandwidth.
		{"R-4.1.2.1.8 empty bandwidth object", `[{"name":"a","bandwidth":{}}]`, wantInvalid{Network: n, Field: "bandwidth", Requirement: "R-4.1.2.1.8"}},
		{"R-4.1.2.1.8 bandwidth with unknown keys only", `[{"name":"a","bandwidth":{"rate":1}}]`, wantInvalid{Network: n, Field: "bandwidth", Requirement: "R-4.1.2.1.8"}},
		{"R-4.1.2.1.8 bandwidth not an object", `[{"name":"a","bandwidth":1000}]`, wantInvalid{Network: n, Field: "bandwidth", Requirement: "R-4.1.2.1.8"}},
		{"R-4.1.2.1.8 bandwidth zero", `[{"name":"a","bandwidth":{"ingressRate":0}}]`, wantInvalid{Network: n, Field: "bandwidth.ingressRate", Value: "0", Requirement: "R-4.1.2.1.8"}},
		{"R-4.1.2.1.8 bandwidth negative", `[{"name":"a","bandwidth":{"egressRate":-5}}]`, wantInvalid{Network: n, Field: "bandwidth.egressRate", Value: "-5", Requirement: "R-4.1.2.1.8"}},
		{"R-4.1.2.1.8 bandwidth float", `[{"name":"a","bandwidth":{"egressRate":1.5}}]`, wantInvalid{Network: n, Field: "bandwidth.egressRate", Requirement: "R-4.1.2.1.8"}},
		{"R-4.1.2.1.8 bandwidth overflow", `[{"name":"a","bandwidth":{"egressRate":9223372036854775808}}]`, wantInvalid{Network: n, Field: "bandwidth.egressRate", Requirement: "R-4.1.2.1.8"}},
		{"R-4.1.2.1.8 ingress burst without rate", `[{"name":"a","bandwidth":{"ingressBurst":10,"egressRate":1}}]`, wantInvalid{Network: n, Field: "bandwidth.ingressBurst", Requirement: "R-4.1.2.1.8"}},
		{"R-4.1.2.1.8 egress burst without rate", `[{"name":"a","bandwidth":{"egressBurst":10}}]`, wantInvalid{Network: n, Field: "bandwidth.egressBurst", Requirement: "R-4.1.2.1.8"}},

		// cni-args.
		{"R-4.1.2.1.6 cni-args array", `[{"name":"a","cni-args":[1]}]`, wantInvalid{Network: n, Field: "cni-args", Requirement: "R-4.1.2.1.6"}},
		{"R-4.1.2.1.6 cni-args string", `[{"name":"a","cni-args":"k=v"}]`, wantInvalid{Network: n, Field: "cni-args", Requirement: "R-4.1.2.1.6"}},

		// default-route.
		{"R-4.1.2.1.9 default-route on two elements", `[{"name":"a","default-route":[]},{"name":"b"},{"name":"c","default-route":["10.0.0.1"]}]`,
			wantInvalid{Index: 2, Network: "pod-ns/c", Field: "default-route", Requirement: "R-4.1.2.1.9"}},
		{"R-4.1.2.1.9 default-route not an array", `[{"name":"a","default-route":"10.0.0.1"}]`, wantInvalid{Network: n, Field: "default-route", Requirement: "R-4.1.2.1.9"}},
		{"R-4.1.2.1.9 default-route null", `[{"name":"a","default-route":null}]`, wantInvalid{Network: n, Field: "default-route", Requirement: "R-4.1.2.1.9"}},
		{"R-4.1.2.1.9 default-route with prefix", `[{"name":"a","default-route":["10.0.0.1/24"]}]`, wantInvalid{Network: n, Field: "default-route", Value: "10.0.0.1/24", Requirement: "R-4.1.2.1.9"}},

		// ipam-claim-reference and deviceID.
		{"R-4.1.2.1.11 ipam-claim-reference not a string", `[{"name":"a","ipam-claim-reference":{}}]`, wantInvalid{Network: n, Field: "ipam-claim-reference", Requirement: "R-4.1.2.1.11"}},
		{"extension deviceID not a string", `[{"name":"a","deviceID":3}]`, wantInvalid{Network: n, Field: "deviceID"}},

		// the first problem, in element order, is reported.
		{"R-4.1.2 first faulty element wins", `[{"name":"a"},{"name":"b","mac":"x"},{"name":"C"}]`, wantInvalid{Index: 1, Network: "pod-ns/b", Field: "mac", Value: "x", Requirement: "R-4.1.2.1.4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.value, "pod-ns")
			if got != nil {
				t.Errorf("Parse(%s) returned elements %v with an error", tt.value, got)
			}
			checkInvalid(t, err, tt.want)
		})
	}
}
