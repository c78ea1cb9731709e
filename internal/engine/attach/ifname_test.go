package attach

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/selection"
)

// TestNameInterfaces proves the interface naming rules: the cluster network gets
// CNI_IFNAME, other attachments their requested name or net<position>, generated
// names avoid every name requested anywhere in the list, and a requested
// name already used by an earlier attachment fails (R-4.1.2.1.5).
func TestNameInterfaces(t *testing.T) {
	// plan builds attachments: "" is an attachment without a selection (the
	// cluster network or a default network); "sel" one with a selection that
	// requests nothing; "sel@name" one requesting interface name.
	plan := func(specs ...string) []Planned {
		var out []Planned
		for i, s := range specs {
			p := Planned{Attachment: podnet.Attachment{Network: "n" + string(rune('0'+i))}}
			switch {
			case s == "sel":
				p.Selection = &selection.Element{Namespace: "ns1", Name: p.Network}
			case len(s) > 4 && s[:4] == "sel@":
				p.Selection = &selection.Element{Namespace: "ns1", Name: p.Network, Interface: s[4:]}
			}
			out = append(out, p)
		}
		return out
	}
	tests := []struct {
		name      string
		ifName    string
		specs     []string
		want      []string
		wantError *InterfaceConflictError
	}{
		{
			name:   "cluster network gets CNI_IFNAME",
			ifName: "eth0",
			specs:  []string{""},
			want:   []string{"eth0"},
		},
		{
			name:   "cluster network gets the runtime's CNI_IFNAME whatever it is",
			ifName: "pod0",
			specs:  []string{"", "sel"},
			want:   []string{"pod0", "net1"},
		},
		{
			name:   "R-4.2.1 generated names are net<position> over default and selected networks",
			ifName: "eth0",
			specs:  []string{"", "", "sel", "sel"},
			want:   []string{"eth0", "net1", "net2", "net3"},
		},
		{
			name:   "R-4.2.1 generated names skip a name requested later in the list",
			ifName: "eth0",
			specs:  []string{"", "sel", "sel@net1"},
			want:   []string{"eth0", "net2", "net1"},
		},
		{
			name:   "R-4.2.1 generated names skip a name requested earlier in the list",
			ifName: "eth0",
			specs:  []string{"", "sel@net2", "sel"},
			want:   []string{"eth0", "net2", "net3"},
		},
		{
			name:   "R-4.2.1 generated names skip several taken names in a row",
			ifName: "eth0",
			specs:  []string{"", "sel", "sel@net1", "sel@net2", "sel@net3"},
			want:   []string{"eth0", "net4", "net1", "net2", "net3"},
		},
		{
			name:   "R-4.2.1 generated names skip CNI_IFNAME",
			ifName: "net1",
			specs:  []string{"", "sel"},
			want:   []string{"net1", "net2"},
		},
		{
			name:   "R-4.2 the same network twice gets two interfaces",
			ifName: "eth0",
			specs:  []string{"", "sel", "sel"},
			want:   []string{"eth0", "net1", "net2"},
		},
		{
			name:   "R-4.1.2.1.5 requested names are used as given",
			ifName: "eth0",
			specs:  []string{"", "sel@data0", "sel@data1"},
			want:   []string{"eth0", "data0", "data1"},
		},
		{
			name:      "R-4.1.2.1.5 requested name already used fails",
			ifName:    "eth0",
			specs:     []string{"", "sel@data0", "sel@data0"},
			wantError: &InterfaceConflictError{Network: "n2", IfName: "data0", Previous: "n1"},
		},
		{
			name:      "R-4.1.2.1.5 requesting the cluster network's eth0 fails",
			ifName:    "eth0",
			specs:     []string{"", "sel@eth0"},
			wantError: &InterfaceConflictError{Network: "n1", IfName: "eth0", Previous: "n0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			planned := plan(tt.specs...)
			err := nameInterfaces(tt.ifName, planned)
			if tt.wantError != nil {
				var ce *InterfaceConflictError
				if !errors.As(err, &ce) {
					t.Fatalf("error = %v, want *InterfaceConflictError", err)
				}
				if diff := cmp.Diff(tt.wantError, ce); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("nameInterfaces: %v", err)
			}
			var got []string
			for _, p := range planned {
				got = append(got, p.IfName)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("interface names (-want +got):\n%s", diff)
			}
		})
	}
}

// TestResolveInterfaceConflict proves that Resolve itself fails with an
// *InterfaceConflictError when a selection asks for the cluster network's
// interface (R-4.1.2.1.5).
func TestResolveInterfaceConflict(t *testing.T) {
	dir := t.TempDir()
	in := Input{
		Conf:       testConf(t, dir, `,"delegates":[{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"}]`),
		Req:        addRequest(t, defaultArgs),
		Pod:        testPod(),
		NADs:       nads([3]string{"ns1", "net-a", `{"cniVersion":"1.0.0","type":"macvlan"}`}),
		Selections: parseSel(t, `[{"name":"net-a","interface":"eth0"}]`),
	}
	_, err := Resolve(t.Context(), in)
	var ce *InterfaceConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("Resolve error = %v, want *InterfaceConflictError", err)
	}
	want := &InterfaceConflictError{Network: "ns1/net-a", IfName: "eth0", Previous: "cbr0"}
	if diff := cmp.Diff(want, ce); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}
