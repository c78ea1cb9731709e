package attach

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

// TestErrorCodesAndMessages proves that every resolution error carries its CNI
// code through wrapping (the boundary finds it with errors.As) and names the
// network in its message, with the requirement it enforces where one applies.
func TestErrorCodesAndMessages(t *testing.T) {
	cause := errors.New("not a JSON object")
	tests := []struct {
		name     string
		err      error
		wantCode uint
		wantText []string
	}{
		{
			name:     "R-3.4.1 network not found",
			err:      &NetworkNotFoundError{Network: "ns1/net-a", Reason: "no NetworkAttachmentDefinition ns1/net-a"},
			wantCode: cnicode.NetworkNotFound,
			wantText: []string{`"ns1/net-a"`, "not found"},
		},
		{
			name:     "R-7.4 refused",
			err:      &RefusedError{Network: "other/net-a", Reason: "namespaceIsolation is on"},
			wantCode: cnicode.NetworkRefused,
			wantText: []string{`"other/net-a"`, "R-7.4"},
		},
		{
			name:     "R-4.1.2.1.5 interface conflict",
			err:      &InterfaceConflictError{Network: "ns1/net-b", IfName: "net1", Previous: "ns1/net-a"},
			wantCode: cnicode.InterfaceConflict,
			wantText: []string{`"ns1/net-b"`, `"net1"`, `"ns1/net-a"`, "R-4.1.2.1.5"},
		},
		{
			name:     "R-4.1.2.1.3 capability missing",
			err:      &CapabilityError{Network: "ns1/net-a", Key: "ips", Capability: "ips", Requirement: "R-4.1.2.1.3"},
			wantCode: cnicode.CapabilityMissing,
			wantText: []string{`"ns1/net-a"`, "capabilities.ips", "R-4.1.2.1.3"},
		},
		{
			name:     "configuration error",
			err:      &ConfigError{Network: "ns1/net-a", Source: "cni-args", Err: cause},
			wantCode: cnicode.InvalidNetworkConfig,
			wantText: []string{`"ns1/net-a"`, "cni-args", "not a JSON object"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wrapped := fmt.Errorf("pod ns1/pod-1: %w", tt.err)
			var coder cnicode.Coder
			if !errors.As(wrapped, &coder) {
				t.Fatalf("%T has no CNI code reachable through wrapping", tt.err)
			}
			if coder.CNICode() != tt.wantCode {
				t.Errorf("CNICode() = %d, want %d", coder.CNICode(), tt.wantCode)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(tt.err.Error(), s) {
					t.Errorf("message %q lacks %q", tt.err, s)
				}
			}
		})
	}
	if !errors.Is(&ConfigError{Err: cause}, cause) {
		t.Error("ConfigError does not unwrap to its cause")
	}
}
