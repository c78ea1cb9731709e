package selection

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRuntimeConfigJSON checks that PortMapping and Bandwidth marshal to the
// runtimeConfig shapes the portmap and bandwidth plugins read, and back.
func TestRuntimeConfigJSON(t *testing.T) {
	tests := []struct {
		name  string
		value any
		json  string
	}{
		{
			name:  "R-4.1.2.1.7 port mapping without hostIP",
			value: PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
			json:  `{"hostPort":8080,"containerPort":80,"protocol":"tcp"}`,
		},
		{
			name:  "R-4.1.2.1.7 port mapping with hostIP",
			value: PortMapping{HostPort: 53, ContainerPort: 5353, Protocol: "udp", HostIP: "fd00::1"},
			json:  `{"hostPort":53,"containerPort":5353,"protocol":"udp","hostIP":"fd00::1"}`,
		},
		{
			name:  "R-4.1.2.1.8 full bandwidth",
			value: Bandwidth{IngressRate: 1, IngressBurst: 2, EgressRate: 3, EgressBurst: 4},
			json:  `{"ingressRate":1,"ingressBurst":2,"egressRate":3,"egressBurst":4}`,
		},
		{
			name:  "R-4.1.2.1.8 unset limits are omitted",
			value: Bandwidth{EgressRate: 1000000},
			json:  `{"egressRate":1000000}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.value)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(b) != tt.json {
				t.Errorf("Marshal = %s, want %s", b, tt.json)
			}
			back := reflect.New(reflect.TypeOf(tt.value))
			if err := json.Unmarshal(b, back.Interface()); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if diff := cmp.Diff(tt.value, back.Elem().Interface()); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParsedRuntimeConfig checks the path the engine takes: values parsed from
// the annotation marshal to exactly what a plugin expects.
func TestParsedRuntimeConfig(t *testing.T) {
	elements, err := Parse(`[{"name":"a","portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"TCP"}],
		"bandwidth":{"ingressRate":100,"ingressBurst":10}}]`, "pod-ns")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got, err := json.Marshal(map[string]any{"portMappings": elements[0].PortMappings, "bandwidth": elements[0].Bandwidth})
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	want := `{"bandwidth":{"ingressRate":100,"ingressBurst":10},"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}`
	if string(got) != want {
		t.Errorf("runtimeConfig = %s, want %s", got, want)
	}
}
