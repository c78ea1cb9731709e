package daemon

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/polynet-cni/polynet/internal/adapter/delegate"
	"github.com/polynet-cni/polynet/internal/metrics"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// scriptedExec plays delegate binaries: a plugin whose type is in fail fails
// every command, others succeed.
type scriptedExec struct{ fail map[string]bool }

func (s scriptedExec) ExecPlugin(_ context.Context, _ string, stdin []byte, environ []string) ([]byte, error) {
	var conf struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(stdin, &conf)
	if s.fail[conf.Type] {
		return nil, types.NewError(types.ErrInternal, conf.Type+" refuses", "")
	}
	if envValue(environ, "CNI_COMMAND") == "ADD" {
		return []byte(`{"cniVersion":"1.0.0","interfaces":[{"name":"net1"}],"ips":[]}`), nil
	}
	return nil, nil
}

func (scriptedExec) FindInPath(plugin string, _ []string) (string, error) {
	return "/fake/" + plugin, nil
}

func (scriptedExec) Decode(data []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(data)
}

// series returns the gathered series of metric name with exactly these labels,
// or nil.
func series(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			if cmp.Equal(got, labels) {
				return m
			}
		}
	}
	return nil
}

// TestInstrumentedCountsFailuresPerPluginType: every delegate call is timed by
// command and network; a failed one counts for its plugin type, and for
// "unknown" when its configuration could not even be read.
func TestInstrumentedCountsFailuresPerPluginType(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, func() float64 { return 0 })
	in := instrumented{
		Runner:  &delegate.Runner{Path: []string{"/nowhere"}, CacheDir: t.TempDir(), Exec: scriptedExec{fail: map[string]bool{"macvlan": true, "tuning": true}}},
		metrics: m,
	}
	ctx := context.Background()
	sb := podnet.Sandbox{ContainerID: "c1", NetNS: "/var/run/netns/c1"}
	att := func(network, config string) podnet.Attachment {
		return podnet.Attachment{Network: network, IfName: "net1", Config: []byte(config)}
	}
	bridge := att("team-a/ok", `{"cniVersion":"1.0.0","name":"ok","type":"bridge"}`)
	macvlan := att("team-a/mv", `{"cniVersion":"1.0.0","name":"mv","type":"macvlan"}`)
	chained := att("team-a/chain", `{"cniVersion":"1.0.0","name":"chain","plugins":[{"type":"ipvlan"},{"type":"tuning"}]}`)
	broken := att("team-a/broken", `{"cniVersion":"1.0.0","name":"broken"}`)

	if _, err := in.Add(ctx, sb, bridge); err != nil {
		t.Fatalf("ADD of a working delegate: %v", err)
	}
	if err := in.Check(ctx, sb, bridge); err != nil {
		t.Fatalf("CHECK of a working delegate: %v", err)
	}
	if err := in.Del(ctx, sb, bridge); err != nil {
		t.Fatalf("DEL of a working delegate: %v", err)
	}
	if _, err := in.Add(ctx, sb, macvlan); err == nil {
		t.Fatal("ADD of a failing delegate succeeded")
	}
	if err := in.Del(ctx, sb, macvlan); err == nil {
		t.Fatal("DEL of a failing delegate succeeded")
	}
	if _, err := in.Add(ctx, sb, chained); err == nil {
		t.Fatal("ADD of a failing chain succeeded")
	}
	if _, err := in.Add(ctx, sb, broken); err == nil {
		t.Fatal("ADD of an unreadable configuration succeeded")
	}

	for plugin, want := range map[string]float64{"bridge": 0, "macvlan": 2, "tuning": 1, "unknown": 1} {
		if got := series(t, reg, "multus_delegate_failures_total", map[string]string{"plugin": plugin}).GetCounter().GetValue(); got != want {
			t.Errorf("failures of plugin %q: %v, want %v", plugin, got, want)
		}
	}
	timed := []struct {
		command, network string
		want             uint64
	}{
		{"ADD", "team-a/ok", 1}, {"CHECK", "team-a/ok", 1}, {"DEL", "team-a/ok", 1},
		{"ADD", "team-a/mv", 1}, {"DEL", "team-a/mv", 1}, {"ADD", "team-a/chain", 1}, {"ADD", "team-a/broken", 1},
	}
	for _, tt := range timed {
		labels := map[string]string{"command": tt.command, "network": tt.network}
		if got := series(t, reg, "multus_attachment_duration_seconds", labels).GetHistogram().GetSampleCount(); got != tt.want {
			t.Errorf("observations of %v: %d, want %d", labels, got, tt.want)
		}
	}
}

// TestInstrumentedWithoutMetrics: without metrics the calls still run.
func TestInstrumentedWithoutMetrics(t *testing.T) {
	in := instrumented{Runner: &delegate.Runner{Path: []string{"/nowhere"}, CacheDir: t.TempDir(), Exec: scriptedExec{fail: map[string]bool{"macvlan": true}}}}
	a := podnet.Attachment{Network: "n", IfName: "net1", Config: []byte(`{"cniVersion":"1.0.0","name":"n","type":"macvlan"}`)}
	if _, err := in.Add(context.Background(), podnet.Sandbox{ContainerID: "c1", NetNS: "/n"}, a); err == nil {
		t.Error("ADD of a failing delegate succeeded")
	}
}
