package podnet

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClaimNames(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		want  []string
	}{
		{name: "none", want: nil},
		{name: "spec and status name one claim", names: []string{"a", "", "b", "a", "b", "c"}, want: []string{"a", "b", "c"}},
		{name: "only empty", names: []string{"", ""}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ClaimNames(tt.names...)); diff != "" {
				t.Errorf("ClaimNames (-want +got):\n%s", diff)
			}
		})
	}
}

func TestQualifiedAttributeAndReservation(t *testing.T) {
	for _, tt := range []struct{ driver, name, want string }{
		{"k8s.cni.cncf.io", "resourceName", DeviceResourceAttribute},
		{"sriov.example.com", DeviceIDAttribute, DeviceIDAttribute},
		{"sriov.example.com", "model", "sriov.example.com/model"},
	} {
		if got := QualifiedAttribute(tt.driver, tt.name); got != tt.want {
			t.Errorf("QualifiedAttribute(%q, %q) = %q, want %q", tt.driver, tt.name, got, tt.want)
		}
	}
	c := Claim{ReservedFor: []string{"u1", "u2"}}
	if !c.ReservedForPod("u2") || c.ReservedForPod("u3") || c.ReservedForPod("") {
		t.Errorf("ReservedForPod of %v: want u2 only", c.ReservedFor)
	}
}
