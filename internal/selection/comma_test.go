package selection

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// wantInvalid describes the parts of an InvalidError a test pins down; Reason
// is left out on purpose so that messages can be reworded without touching
// every case.
type wantInvalid struct {
	Index       int
	Network     string
	Field       string
	Value       string
	Requirement string
}

// checkInvalid fails the test unless err is an *InvalidError matching want.
func checkInvalid(t *testing.T, err error, want wantInvalid) {
	t.Helper()
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("error = %v (%T), want *InvalidError", err, err)
	}
	got := wantInvalid{inv.Index, inv.Network, inv.Field, inv.Value, inv.Requirement}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("InvalidError mismatch (-want +got):\n%s\nmessage: %v", diff, err)
	}
	if inv.Reason == "" {
		t.Errorf("InvalidError has no reason: %v", err)
	}
}

// label63 is a valid DNS-1123 label of the maximum length.
var label63 = "0" + strings.Repeat("a-", 30) + "ab"

func TestParseEmpty(t *testing.T) {
	for _, value := range []string{"", " ", "\t\n ", ",", " , ,", "[]", " [ ] "} {
		t.Run(value, func(t *testing.T) {
			got, err := Parse(value, "pod-ns")
			if err != nil || got != nil {
				t.Errorf("Parse(%q) = %v, %v; want nil, nil", value, got, err)
			}
		})
	}
}

func TestParseCommaValid(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  []Element
	}{
		{
			name:  "R-4.1.1 bare name uses the default namespace",
			value: "macvlan",
			want:  []Element{{Name: "macvlan", Namespace: "pod-ns"}},
		},
		{
			name:  "R-4.1.1 namespace/name",
			value: "ns1/macvlan",
			want:  []Element{{Name: "macvlan", Namespace: "ns1"}},
		},
		{
			name:  "extension name@ifname",
			value: "macvlan@net1",
			want:  []Element{{Name: "macvlan", Namespace: "pod-ns", Interface: "net1"}},
		},
		{
			name:  "extension namespace/name@ifname",
			value: "ns1/macvlan@data0",
			want:  []Element{{Name: "macvlan", Namespace: "ns1", Interface: "data0"}},
		},
		{
			name:  "R-4.1.1 several items keep their order and spaces are trimmed",
			value: "  b , ns1/a@eth1 ,c  ",
			want: []Element{
				{Name: "b", Namespace: "pod-ns"},
				{Name: "a", Namespace: "ns1", Interface: "eth1"},
				{Name: "c", Namespace: "pod-ns"},
			},
		},
		{
			name:  "R-4.1.1 trailing and doubled commas are skipped",
			value: "a,,b,",
			want:  []Element{{Name: "a", Namespace: "pod-ns"}, {Name: "b", Namespace: "pod-ns"}},
		},
		{
			name:  "R-4.2 the same network may be requested twice",
			value: "a,a",
			want:  []Element{{Name: "a", Namespace: "pod-ns"}, {Name: "a", Namespace: "pod-ns"}},
		},
		{
			name:  "R-3.3 label of 63 characters with digits and dashes",
			value: label63,
			want:  []Element{{Name: label63, Namespace: "pod-ns"}},
		},
		{
			name:  "interface name of 15 bytes with dot and dash",
			value: "a@abcdefghij.k-12",
			want:  []Element{{Name: "a", Namespace: "pod-ns", Interface: "abcdefghij.k-12"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.value, "pod-ns")
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.value, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.value, diff)
			}
		})
	}
}

func TestParseCommaInvalid(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  wantInvalid
	}{
		{
			name:  "R-4.1.1 double slash",
			value: "a/b/c",
			want:  wantInvalid{Index: 0, Value: "a/b/c", Requirement: "R-4.1.1"},
		},
		{
			name:  "R-4.1.1 double at",
			value: "ok, a@b@c",
			want:  wantInvalid{Index: 1, Value: "a@b@c", Requirement: "R-4.1.1"},
		},
		{
			name:  "R-4.1.1 index counts only non-empty items",
			value: ",,ok,,a//b",
			want:  wantInvalid{Index: 1, Value: "a//b", Requirement: "R-4.1.1"},
		},
		{
			name:  "R-3.3 upper case name",
			value: "MacVlan",
			want:  wantInvalid{Index: 0, Field: "name", Value: "MacVlan", Requirement: "R-3.3"},
		},
		{
			name:  "R-3.3 underscore in namespace",
			value: "my_ns/net",
			want:  wantInvalid{Index: 0, Field: "namespace", Value: "my_ns", Requirement: "R-3.3"},
		},
		{
			name:  "R-3.3 name too long",
			value: label63 + "x",
			want:  wantInvalid{Index: 0, Field: "name", Value: label63 + "x", Requirement: "R-3.3"},
		},
		{
			name:  "R-3.3 name starting with a dash",
			value: "-net",
			want:  wantInvalid{Index: 0, Field: "name", Value: "-net", Requirement: "R-3.3"},
		},
		{
			name:  "R-3.3 name ending with a dash",
			value: "ns/net-",
			want:  wantInvalid{Index: 0, Field: "name", Value: "net-", Requirement: "R-3.3"},
		},
		{
			name:  "R-3.3 empty namespace",
			value: "/net",
			want:  wantInvalid{Index: 0, Field: "namespace", Requirement: "R-3.3"},
		},
		{
			name:  "R-3.3 empty name",
			value: "ns/",
			want:  wantInvalid{Index: 0, Field: "name", Requirement: "R-3.3"},
		},
		{
			name:  "R-3.3 empty name before the interface",
			value: "@eth1",
			want:  wantInvalid{Index: 0, Field: "name", Requirement: "R-3.3"},
		},
		{
			name:  "R-3.3 space inside the item",
			value: "ns/ net",
			want:  wantInvalid{Index: 0, Field: "name", Value: " net", Requirement: "R-3.3"},
		},
		{
			name:  "R-4.1.2.1.5 interface name too long",
			value: "ns/net@abcdefghijklmnop",
			want:  wantInvalid{Index: 0, Network: "ns/net", Field: "interface", Value: "abcdefghijklmnop", Requirement: "R-4.1.2.1.5"},
		},
		{
			name:  "R-4.1.2.1.5 interface name with a slash",
			value: "net@eth/1",
			want:  wantInvalid{Index: 0, Network: "pod-ns/net", Field: "interface", Value: "eth/1", Requirement: "R-4.1.2.1.5"},
		},
		{
			name:  "R-4.1.2.1.5 interface name with a colon",
			value: "net@eth0:1",
			want:  wantInvalid{Index: 0, Network: "pod-ns/net", Field: "interface", Value: "eth0:1", Requirement: "R-4.1.2.1.5"},
		},
		{
			name:  "R-4.1.2.1.5 interface name with a space",
			value: "net@eth 1",
			want:  wantInvalid{Index: 0, Network: "pod-ns/net", Field: "interface", Value: "eth 1", Requirement: "R-4.1.2.1.5"},
		},
		{
			name:  "R-4.1.2.1.5 interface name dot dot",
			value: "net@..",
			want:  wantInvalid{Index: 0, Network: "pod-ns/net", Field: "interface", Value: "..", Requirement: "R-4.1.2.1.5"},
		},
		{
			name:  "R-4.1.2.1.5 empty interface name after at",
			value: "net@",
			want:  wantInvalid{Index: 0, Network: "pod-ns/net", Field: "interface", Requirement: "R-4.1.2.1.5"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.value, "pod-ns")
			if got != nil {
				t.Errorf("Parse(%q) returned elements %v with an error", tt.value, got)
			}
			checkInvalid(t, err, tt.want)
		})
	}
}
