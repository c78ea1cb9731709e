package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// TestErrors proves that the engine's errors carry their CNI code through
// wrapping, name what the operator needs (pod, network, UID, path), and keep a
// delegate's *types.Error reachable so its code is what the runtime sees.
func TestErrors(t *testing.T) {
	pod := podnet.PodRef{Namespace: "ns1", Name: "pod-1", UID: "uid-1"}
	delegateErr := &types.Error{Code: types.ErrTryAgainLater, Msg: "busy"}
	tests := []struct {
		name     string
		err      error
		wantCode uint // 0: no code of ours
		wantText []string
	}{
		{
			name:     "pod UID mismatch",
			err:      &PodUIDMismatchError{Pod: pod, APIUID: "api-uid", Sandbox: "uid-1"},
			wantCode: cnicode.PodUIDMismatch,
			wantText: []string{"ns1/pod-1", `"uid-1"`, `"api-uid"`},
		},
		{
			name:     "R-6.1.2 not ready",
			err:      &NotReadyError{Path: "/run/ready", Waited: "45s"},
			wantCode: cnicode.TryAgainLater,
			wantText: []string{"/run/ready", "45s"},
		},
		{
			name:     "invalid selection",
			err:      &SelectionError{Pod: pod, Err: errors.New("networks annotation: bad")},
			wantCode: cnicode.InvalidSelection,
			wantText: []string{"ns1/pod-1", "networks annotation: bad"},
		},
		{
			name:     "R-7.2a attach failure names pod, network and interface",
			err:      &AttachError{Pod: pod, Network: "ns1/net-a", IfName: "net1", Err: delegateErr},
			wantText: []string{"ns1/pod-1", `"ns1/net-a"`, "net1", "busy"},
		},
		{
			name: "R-7.2b detach failure lists every failure",
			err: &DetachError{ContainerID: "c1", Failed: []error{
				fmt.Errorf("network %q interface net2: %w", "ns1/net-b", delegateErr),
				errors.New(`network "cbr0" interface eth0: crashed`),
			}},
			wantText: []string{"c1", "2 attachment(s)", `"ns1/net-b"`, "busy", `"cbr0"`, "crashed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wrapped := fmt.Errorf("command failed: %w", tt.err)
			var coder cnicode.Coder
			if tt.wantCode != 0 {
				if !errors.As(wrapped, &coder) || coder.CNICode() != tt.wantCode {
					t.Errorf("CNI code of %T = %v, want %d", tt.err, coder, tt.wantCode)
				}
			}
			for _, s := range tt.wantText {
				if !strings.Contains(tt.err.Error(), s) {
					t.Errorf("message %q lacks %q", tt.err, s)
				}
			}
			if strings.HasSuffix(tt.err.Error(), ";") || strings.HasSuffix(tt.err.Error(), ":") {
				t.Errorf("message %q ends with a separator", tt.err)
			}
		})
	}
	for _, err := range []error{
		&AttachError{Pod: pod, Network: "n", IfName: "net1", Err: delegateErr},
		&DetachError{ContainerID: "c1", Failed: []error{errors.New("x"), fmt.Errorf("y: %w", delegateErr)}},
	} {
		var te *types.Error
		if !errors.As(fmt.Errorf("wrapped: %w", err), &te) || te.Code != types.ErrTryAgainLater {
			t.Errorf("%T does not keep the delegate's *types.Error reachable", err)
		}
	}
	if !errors.Is(&SelectionError{Err: delegateErr}, delegateErr) {
		t.Error("SelectionError does not unwrap to its cause")
	}
}
