package engine

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/request"
)

// statusRequest builds a STATUS request: no container, no pod.
func statusRequest(t *testing.T) *request.Request {
	t.Helper()
	req, err := request.FromEnv(request.Status, func(k string) string {
		if k == "CNI_PATH" {
			return "/opt/cni/bin"
		}
		return ""
	}, nil)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	return req
}

// TestStatusNotAvailable proves that STATUS answers "plugin not available"
// (code 50, *NotAvailableError) for our own conditions, without running any
// delegate: the readiness indicator file is missing, the API server does not
// answer, or the cluster network does not resolve.
func TestStatusNotAvailable(t *testing.T) {
	tests := []struct {
		name  string
		extra func(dir string) string
		kube  func() *fakeKube
	}{
		{
			name:  "readiness indicator file missing",
			extra: func(dir string) string { return `,"readinessindicatorfile":` + quote(filepath.Join(dir, "ready")) },
			kube:  standardKube,
		},
		{
			name: "API server not ready",
			kube: func() *fakeKube {
				k := standardKube()
				k.readyErr = errors.New("401 Unauthorized")
				return k
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			extra := ""
			if tt.extra != nil {
				extra = tt.extra(dir)
			}
			conf := defaultConf(t, dir, extra)
			del := &fakeDelegates{}
			e := newEngine(tt.kube(), del, conf)
			err := e.Status(t.Context(), statusRequest(t), conf)
			var na *NotAvailableError
			if !errors.As(err, &na) {
				t.Fatalf("Status error = %v, want *NotAvailableError", err)
			}
			var coder cnicode.Coder
			if !errors.As(err, &coder) || coder.CNICode() != cnicode.PluginNotAvailable || cnicode.PluginNotAvailable != 50 {
				t.Errorf("CNI code of %v = %v, want 50", err, coder)
			}
			if len(del.calls) != 0 {
				t.Errorf("delegates called: %v", del.ops())
			}
		})
	}
}

// TestStatusClusterNetworkMissing proves that a clusterNetwork that resolves to
// nothing makes STATUS answer "plugin not available".
func TestStatusClusterNetworkMissing(t *testing.T) {
	dir := t.TempDir()
	conf := testConf(t, dir, "1.0.0", `,"clusterNetwork":"absent"`)
	del := &fakeDelegates{}
	e := newEngine(standardKube(), del, conf)
	err := e.Status(t.Context(), statusRequest(t), conf)
	var na *NotAvailableError
	if !errors.As(err, &na) {
		t.Fatalf("Status error = %v, want *NotAvailableError", err)
	}
	if len(del.calls) != 0 {
		t.Errorf("delegates called: %v", del.ops())
	}
}

// TestStatusDelegates proves that once our own conditions hold (readiness file
// present, API ready, or no Kubernetes at all), STATUS runs the delegates'
// STATUS of the cluster network with its name and exact configuration, and
// returns their error unchanged, so a plugin's *types.Error keeps its code.
func TestStatusDelegates(t *testing.T) {
	delegateErr := &types.Error{Code: types.ErrTryAgainLater, Msg: "IPAM not ready"}
	tests := []struct {
		name      string
		kube      bool
		statusErr error
		nad       bool
	}{
		{name: "inline cluster network passes", kube: true},
		{name: "delegates-only mode passes", kube: false},
		{name: "delegate error returned unchanged", kube: true, statusErr: delegateErr},
		{name: "cluster network from a NAD", kube: true, nad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ready := filepath.Join(dir, "ready")
			extra := `,"readinessindicatorfile":` + quote(ready)
			conf := defaultConf(t, dir, extra)
			wantNetwork, wantConfig := "cbr0", clusterDelegate
			kube := standardKube()
			if tt.nad {
				wantConfig = `{"cniVersion":"1.0.0","name":"cluster-net","type":"flannel"}`
				kube.addNAD("kube-system", "cluster-net", wantConfig)
				conf = testConf(t, dir, "1.0.0", `,"clusterNetwork":"cluster-net"`+extra)
				wantNetwork = "kube-system/cluster-net"
			}
			del := &fakeDelegates{statusErr: tt.statusErr}
			var e *Engine
			if tt.kube {
				e = newEngine(kube, del, conf)
			} else {
				e = newEngine(nil, del, conf)
			}
			filesOf(e).put(ready, nil)
			err := e.Status(t.Context(), statusRequest(t), conf)
			if err != tt.statusErr {
				t.Errorf("Status error = %v, want %v unchanged", err, tt.statusErr)
			}
			if diff := cmp.Diff([]string{"STATUS " + wantNetwork + " "}, del.ops()); diff != "" {
				t.Errorf("delegate calls (-want +got):\n%s", diff)
			}
			if string(del.statusConfig) != wantConfig {
				t.Errorf("STATUS config = %s, want %s", del.statusConfig, wantConfig)
			}
		})
	}
}
