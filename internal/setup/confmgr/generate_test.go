package confmgr

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/config"
)

const flannel = `{"cniVersion":"0.3.1","name":"cbr0","plugins":[
	{"type":"flannel","capabilities":{"portMappings":false,"ips":true}},
	{"type":"portmap","capabilities":{"portMappings":true}},
	{"type":"bandwidth","capabilities":{"bandwidth":true,"mac":"yes"}}]}`

// daemonRaw is a daemon configuration with copied and non-copied keys.
var daemonRaw = map[string]json.RawMessage{
	"logLevel": json.RawMessage(`"verbose"`), "namespaceIsolation": json.RawMessage(`true`),
	"globalNamespaces": json.RawMessage(`"default,kube-system"`), "confDir": json.RawMessage(`"/etc/cni/multus/net.d"`),
	"readinessindicatorfile": json.RawMessage(`"/run/ready"`), "socketDir": json.RawMessage(`"/host/run/multus"`),
	"daemonSocketDir": json.RawMessage(`"/run/multus/"`),
	"chrootDir":       json.RawMessage(`"/hostroot"`), "cniVersion": json.RawMessage(`"0.3.1"`),
}

// generateCases are checked by TestGenerate against the decoded output.
var generateCases = []struct {
	name     string
	d        config.DaemonConf
	primary  string
	wantFile string
	want     map[string]any
}{{
	name:     "conf below 1.0.0, capabilities only the true ones from every plugin",
	d:        config.DaemonConf{CNIVersion: "0.3.1", SocketDir: "/run/multus"},
	primary:  flannel,
	wantFile: "00-multus.conf",
	want: map[string]any{"cniVersion": "0.3.1", "name": DefaultNetworkName, "type": "multus-shim",
		"clusterNetwork": "/etc/cni/net.d/10-flannel.conflist",
		"capabilities":   map[string]any{"ips": true, "portMappings": true, "bandwidth": true}},
}, {
	name:     "conflist from 1.0.0, no capabilities key when the primary has none",
	d:        config.DaemonConf{CNIVersion: "1.0.0", SocketDir: "/run/multus"},
	primary:  `{"cniVersion":"1.0.0","name":"kindnet","type":"ptp","capabilities":{"portMappings":false}}`,
	wantFile: "00-multus.conflist",
	want: map[string]any{"cniVersion": "1.0.0", "name": DefaultNetworkName, "plugins": []any{map[string]any{
		"type": "multus-shim", "clusterNetwork": "/etc/cni/net.d/10-flannel.conflist"}}},
}, {
	name:     "overrideNetworkName and copied keys, never readinessindicatorfile nor daemon-only keys such as socketDir",
	d:        config.DaemonConf{CNIVersion: "1.1.0", SocketDir: "/run/multus", OverrideNetworkName: true, Raw: daemonRaw},
	primary:  `{"cniVersion":"1.0.0","name":"cilium","type":"cilium-cni"}`,
	wantFile: "00-multus.conflist",
	want: map[string]any{"cniVersion": "1.1.0", "name": "cilium", "plugins": []any{map[string]any{
		"type": "multus-shim", "clusterNetwork": "/etc/cni/net.d/10-flannel.conflist", "daemonSocketDir": "/run/multus/",
		"logLevel": "verbose", "namespaceIsolation": true, "globalNamespaces": "default,kube-system",
		"confDir": "/etc/cni/multus/net.d"}}},
}, {
	name:     "overrideNetworkName with an unnamed primary keeps the default name",
	d:        config.DaemonConf{CNIVersion: "0.4.0", OverrideNetworkName: true},
	primary:  `{"cniVersion":"0.4.0","type":"bridge"}`,
	wantFile: "00-multus.conf",
	want: map[string]any{"cniVersion": "0.4.0", "name": DefaultNetworkName, "type": "multus-shim",
		"clusterNetwork": "/etc/cni/net.d/10-flannel.conflist"},
}}

// TestGenerateThin checks the thin plugin's configuration, as thin_entrypoint
// writes it: type multus, the primary inline byte for byte, the kubeconfig, the
// readiness indicator passed on, numbers of the primary kept digit for digit,
// and a cniVersion that follows the primary's
// unless one is set.
func TestGenerateThin(t *testing.T) {
	thin := &Thin{Kubeconfig: "/etc/cni/net.d/multus.d/multus.kubeconfig"}
	cases := []struct {
		name     string
		d        config.DaemonConf
		primary  string
		wantFile string
		want     map[string]any
	}{{
		name:     "cniVersion follows a 0.3.1 primary: a .conf",
		d:        config.DaemonConf{Raw: daemonRaw},
		primary:  flannel,
		wantFile: "00-multus.conf",
		want: map[string]any{"cniVersion": "0.3.1", "name": DefaultNetworkName, "type": "multus",
			"kubeconfig": thin.Kubeconfig, "delegates": []any{decode(t, flannel)},
			"capabilities": map[string]any{"ips": true, "portMappings": true, "bandwidth": true},
			"logLevel":     "verbose", "namespaceIsolation": true, "globalNamespaces": "default,kube-system",
			"confDir": "/etc/cni/multus/net.d", "daemonSocketDir": "/run/multus/",
			"readinessindicatorfile": "/run/ready"},
	}, {
		name:     "cniVersion follows a 1.0.0 primary: a .conflist",
		d:        config.DaemonConf{OverrideNetworkName: true},
		primary:  `{"cniVersion":"1.0.0","name":"kindnet","plugins":[{"type":"ptp"}]}`,
		wantFile: "00-multus.conflist",
		want: map[string]any{"cniVersion": "1.0.0", "name": "kindnet", "plugins": []any{map[string]any{
			"type": "multus", "kubeconfig": thin.Kubeconfig,
			"delegates": []any{decode(t, `{"cniVersion":"1.0.0","name":"kindnet","plugins":[{"type":"ptp"}]}`)}}}},
	}, {
		name:     "a set cniVersion wins",
		d:        config.DaemonConf{CNIVersion: "0.4.0"},
		primary:  `{"cniVersion":"1.0.0","name":"p","type":"ptp"}`,
		wantFile: "00-multus.conf",
		want: map[string]any{"cniVersion": "0.4.0", "name": DefaultNetworkName, "type": "multus", "kubeconfig": thin.Kubeconfig,
			"delegates": []any{decode(t, `{"cniVersion":"1.0.0","name":"p","type":"ptp"}`)}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name, content, err := Generate(&tc.d, thin, "/host/etc/cni/net.d/10-p.conflist", []byte(tc.primary))
			if err != nil {
				t.Fatal(err)
			}
			if name != tc.wantFile {
				t.Errorf("file name %q, want %q", name, tc.wantFile)
			}
			if diff := cmp.Diff(tc.want, decode(t, string(content))); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
		})
	}
	big := `{"cniVersion":"0.4.0","name":"p","type":"ptp","vlan":12345678901234567890}`
	if _, content, err := Generate(&config.DaemonConf{}, thin, "/x/10-p.conf", []byte(big)); err != nil ||
		!bytes.Contains(content, []byte("12345678901234567890")) {
		t.Errorf("a large integer of the primary was not kept (%v):\n%s", err, content)
	}
	if _, _, err := Generate(&config.DaemonConf{}, thin, "/x/10-p.conf", []byte(`{"name":"p","type":"ptp"}`)); err == nil ||
		!strings.Contains(err.Error(), "no cniVersion") {
		t.Errorf("a primary without cniVersion to follow: %v, want an error saying so", err)
	}
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGenerate(t *testing.T) {
	for _, tc := range generateCases {
		t.Run(tc.name, func(t *testing.T) {
			name, content, err := Generate(&tc.d, nil, "/etc/cni/net.d/10-flannel.conflist", []byte(tc.primary))
			if err != nil {
				t.Fatal(err)
			}
			if name != tc.wantFile {
				t.Errorf("file name %q, want %q", name, tc.wantFile)
			}
			var got map[string]any
			if err := json.Unmarshal(content, &got); err != nil {
				t.Fatalf("content is not JSON: %v\n%s", err, content)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
			_, again, _ := Generate(&tc.d, nil, "/etc/cni/net.d/10-flannel.conflist", []byte(tc.primary))
			if !bytes.Equal(content, again) {
				t.Errorf("output is not deterministic:\n%s\n%s", content, again)
			}
		})
	}
}

func TestGenerateClusterNetworkIsAbsolute(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	d := &config.DaemonConf{CNIVersion: "0.3.1"}
	_, content, err := Generate(d, nil, "net.d/../10-a.conf", []byte(conf("bridge", "0.3.1")))
	if err != nil {
		t.Fatal(err)
	}
	real, _ := os.Getwd()
	want := filepath.Join(real, "10-a.conf")
	if !bytes.Contains(content, []byte(`"clusterNetwork": "`+want+`"`)) {
		t.Errorf("clusterNetwork is not %s:\n%s", want, content)
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name    string
		d       config.DaemonConf
		primary string
		want    []string // parts of the error
	}{
		{"multus-shim primary", config.DaemonConf{CNIVersion: "0.3.1"}, conf("multus-shim", "0.3.1"), []string{"multus-shim", "itself"}},
		{"thin multus in a plugin list", config.DaemonConf{CNIVersion: "0.3.1"},
			`{"cniVersion":"0.3.1","name":"x","plugins":[{"type":"bridge"},{"type":"multus"}]}`, []string{`"multus"`, "itself"}},
		{"primary older than 0.4.0", config.DaemonConf{CNIVersion: "1.0.0"}, conf("bridge", "0.3.1"), []string{"0.3.1", "1.0.0"}},
		{"primary without a version", config.DaemonConf{CNIVersion: "0.4.0"}, `{"name":"x","type":"bridge"}`, []string{"(none)", "0.4.0"}},
		{"not an object", config.DaemonConf{CNIVersion: "0.3.1"}, `["x"]`, []string{"not a JSON object"}},
		{"bad daemon version", config.DaemonConf{CNIVersion: "one"}, conf("bridge", "0.3.1"), []string{`"one"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Generate(&tc.d, nil, "/etc/cni/net.d/10-x.conf", []byte(tc.primary))
			if err == nil {
				t.Fatal("no error")
			}
			for _, p := range tc.want {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not mention %q", err, p)
				}
			}
		})
	}
}

func TestGenerateVersionsAccepted(t *testing.T) {
	tests := []struct{ daemon, primary string }{
		{"0.3.1", "0.3.0"}, // below 0.4.0 anything goes
		{"0.3.1", "1.0.0"},
		{"0.4.0", "0.4.0"},
		{"1.1.0", "1.0.0"},
	}
	for _, tc := range tests {
		d := &config.DaemonConf{CNIVersion: tc.daemon}
		if _, _, err := Generate(d, nil, "/x/10-a.conf", []byte(conf("bridge", tc.primary))); err != nil {
			t.Errorf("daemon %s, primary %s: %v", tc.daemon, tc.primary, err)
		}
	}
	d := &config.DaemonConf{CNIVersion: "1.0.0", ForceCNIVersion: true}
	if _, _, err := Generate(d, nil, "/x/10-a.conf", []byte(conf("bridge", "0.3.1"))); err != nil {
		t.Errorf("forceCNIVersion still checks versions: %v", err)
	}
}

// TestAtLeast pins the version comparison, libcni's, and the values it refuses
// although libcni would read them: an empty version and negative parts.
func TestAtLeast(t *testing.T) {
	tests := []struct {
		v, min string
		want   bool
		err    bool
	}{
		{"1.0.0", "1.0.0", true, false},
		{"1.1.0", "1.0.0", true, false},
		{"0.4.0", "1.0.0", false, false},
		{"1.0", "1.0.0", true, false},
		{"1", "0.4.0", true, false},
		{"0.3.1", "0.4.0", false, false},
		{"", "0.4.0", false, true},
		{"-1.0.0", "0.4.0", false, true},
		{"1.-1.0", "0.4.0", false, true},
		{"1.0.0.0", "0.4.0", false, true},
		{"one", "0.4.0", false, true},
	}
	for _, tc := range tests {
		got, err := atLeast(tc.v, tc.min)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("atLeast(%q, %q) = %v, %v; want %v, error %v", tc.v, tc.min, got, err, tc.want, tc.err)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.v)) {
			t.Errorf("atLeast(%q) error %q does not name the value", tc.v, err)
		}
	}
}
