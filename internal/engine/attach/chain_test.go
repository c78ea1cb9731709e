package attach

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Plugin configurations dropped into chain folders.
const (
	tuningConf = `{"type":"tuning","sysctl":{"net.ipv4.conf.eth0.rp_filter":"0"}}`
	sbrConf    = `{"type":"sbr"}`
)

// pluginTypes returns the "type" of every plugin of a configuration.
func pluginTypes(t *testing.T, cfg []byte) []string {
	t.Helper()
	var c struct {
		Type    string `json:"type"`
		Plugins []struct {
			Type string `json:"type"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatalf("config %s: %v", cfg, err)
	}
	if c.Type != "" {
		return []string{c.Type}
	}
	var out []string
	for _, p := range c.Plugins {
		out = append(out, p.Type)
	}
	return out
}

// TestResolveSubdirectoryPlugins proves libcni's subdirectory plugin loading for
// an on-disk cluster network: a .conflist's chain gets the *.conf files of the
// folder named after it, beside it, appended in file name order (other files
// ignored), whether clusterNetwork names the file, its folder or the network;
// not when the conflist sets loadOnlyInlinedPlugins, nor for a single .conf; a
// conflist without such a folder keeps its exact bytes.
func TestResolveSubdirectoryPlugins(t *testing.T) {
	const (
		clusterList = `{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge"}]}`
		onlyInlined = `{"cniVersion":"1.0.0","name":"cluster","loadOnlyInlinedPlugins":true,"plugins":[{"type":"bridge"}]}`
		clusterConf = `{"cniVersion":"1.0.0","name":"cluster","type":"bridge"}`
	)
	tests := []struct {
		name string
		// files are written under confDir; clusterNetwork starting with "/"
		// is a path under confDir ("/" is confDir itself), else a plain name.
		files          map[string]string
		clusterNetwork string
		wantTypes      []string
		wantBytes      string
	}{
		{
			name: "conflist file gets the folder's .conf plugins in name order",
			files: map[string]string{
				"10-cluster.conflist":       clusterList,
				"cluster/20-sbr.conf":       sbrConf,
				"cluster/10-tuning.conf":    tuningConf,
				"cluster/05-other.conflist": `{"name":"x","plugins":[{"type":"ignored"}]}`,
				"cluster/07-other.json":     `{"type":"ignored"}`,
				"cluster/README":            "not a plugin",
			},
			clusterNetwork: "/10-cluster.conflist",
			wantTypes:      []string{"bridge", "tuning", "sbr"},
		},
		{
			name: "conflist found through its folder",
			files: map[string]string{
				"10-cluster.conflist":    clusterList,
				"cluster/10-tuning.conf": tuningConf,
			},
			clusterNetwork: "/",
			wantTypes:      []string{"bridge", "tuning"},
		},
		{
			name: "conflist found by name in confDir",
			files: map[string]string{
				"10-cluster.conflist":    clusterList,
				"cluster/10-tuning.conf": tuningConf,
			},
			clusterNetwork: "cluster",
			wantTypes:      []string{"bridge", "tuning"},
		},
		{
			name: "loadOnlyInlinedPlugins keeps the chain as written",
			files: map[string]string{
				"10-cluster.conflist":    onlyInlined,
				"cluster/10-tuning.conf": tuningConf,
			},
			clusterNetwork: "/10-cluster.conflist",
			wantTypes:      []string{"bridge"},
			wantBytes:      onlyInlined,
		},
		{
			name: "a single .conf gets nothing",
			files: map[string]string{
				"10-cluster.conf":        clusterConf,
				"cluster/10-tuning.conf": tuningConf,
			},
			clusterNetwork: "/10-cluster.conf",
			wantTypes:      []string{"bridge"},
			wantBytes:      clusterConf,
		},
		{
			name:           "no folder: the conflist's exact bytes",
			files:          map[string]string{"10-cluster.conflist": clusterList},
			clusterNetwork: "/10-cluster.conflist",
			wantTypes:      []string{"bridge"},
			wantBytes:      clusterList,
		},
		{
			name: "empty folder: the conflist's exact bytes",
			files: map[string]string{
				"10-cluster.conflist": clusterList,
				"cluster/README":      "nothing here",
			},
			clusterNetwork: "/10-cluster.conflist",
			wantTypes:      []string{"bridge"},
			wantBytes:      clusterList,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			confDir := confDirOf(dir)
			for name, content := range tt.files {
				writeFile(t, filepath.Join(confDir, name), content)
			}
			ref := tt.clusterNetwork
			if ref[0] == '/' {
				ref = filepath.Join(confDir, ref[1:])
			}
			conf := testConf(t, dir, `,"clusterNetwork":`+quoteJSON(ref))
			planned, err := Resolve(t.Context(), Input{Conf: conf, Req: addRequest(t, defaultArgs)})
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if len(planned) != 1 || planned[0].Network != "cluster" {
				t.Fatalf("planned %v, want the cluster network alone", summarize(planned))
			}
			if diff := cmp.Diff(tt.wantTypes, pluginTypes(t, planned[0].Config)); diff != "" {
				t.Errorf("plugin types (-want +got):\n%s", diff)
			}
			if tt.wantBytes != "" && string(planned[0].Config) != tt.wantBytes {
				t.Errorf("config = %s, want the bytes unchanged: %s", planned[0].Config, tt.wantBytes)
			}
		})
	}
}

// TestResolveSubdirectoryPluginsContent proves that appended plugins keep their
// content, and the conflist's other keys stay.
func TestResolveSubdirectoryPluginsContent(t *testing.T) {
	dir := t.TempDir()
	confDir := confDirOf(dir)
	writeFile(t, filepath.Join(confDir, "10-cluster.conflist"), `{"cniVersion":"1.0.0","name":"cluster","disableGC":true,"plugins":[{"type":"bridge","bridge":"cni0"}]}`)
	writeFile(t, filepath.Join(confDir, "cluster", "10-tuning.conf"), tuningConf)
	conf := testConf(t, dir, `,"clusterNetwork":`+quoteJSON(filepath.Join(confDir, "10-cluster.conflist")))
	planned, err := Resolve(t.Context(), Input{Conf: conf, Req: addRequest(t, defaultArgs)})
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	want := map[string]any{
		"cniVersion": "1.0.0", "name": "cluster", "disableGC": true,
		"plugins": []any{
			map[string]any{"type": "bridge", "bridge": "cni0"},
			map[string]any{"type": "tuning", "sysctl": map[string]any{"net.ipv4.conf.eth0.rp_filter": "0"}},
		},
	}
	if diff := cmp.Diff(want, decodeExact(t, planned[0].Config)); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

// TestResolveSubdirectoryPluginsRefused proves that a conflist whose name cannot
// name a folder beside it ("..", a "/") or whose folder holds a plugin without a
// type fails resolution with a *ConfigError rather than reading elsewhere.
func TestResolveSubdirectoryPluginsRefused(t *testing.T) {
	tests := []struct {
		name  string
		list  string
		extra map[string]string
	}{
		{name: "name ..", list: `{"cniVersion":"1.0.0","name":"..","plugins":[{"type":"bridge"}]}`},
		{name: "name with a slash", list: `{"cniVersion":"1.0.0","name":"../etc","plugins":[{"type":"bridge"}]}`},
		{name: "name with a slash inside", list: `{"cniVersion":"1.0.0","name":"a/b","plugins":[{"type":"bridge"}]}`},
		{
			name:  "plugin without type",
			list:  `{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge"}]}`,
			extra: map[string]string{"cluster/10-bad.conf": `{"name":"no-type"}`},
		},
		{
			name:  "plugin not JSON",
			list:  `{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge"}]}`,
			extra: map[string]string{"cluster/10-bad.conf": `{`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			confDir := confDirOf(dir)
			path := filepath.Join(confDir, "10-cluster.conflist")
			writeFile(t, path, tt.list)
			for name, content := range tt.extra {
				writeFile(t, filepath.Join(confDir, name), content)
			}
			conf := testConf(t, dir, `,"clusterNetwork":`+quoteJSON(path))
			_, err := Resolve(t.Context(), Input{Conf: conf, Req: addRequest(t, defaultArgs)})
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Resolve error = %v, want *ConfigError", err)
			}
		})
	}
}

// TestResolveAuxiliaryChain proves upstream's auxiliary CNI chain: with
// auxiliaryCNIChainName set and plugins (*.conf) in the folder of that name
// beside the clusterNetwork file (or inside the clusterNetwork folder), a
// conflist {cniVersion of the meta-plugin, name = chain name, disableCheck true,
// plugins [passthru, ...the folder's plugins in name order]} is planned last,
// marked Auxiliary, with a generated interface; without plugins there is none.
func TestResolveAuxiliaryChain(t *testing.T) {
	const clusterList = `{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge"}]}`
	tests := []struct {
		name      string
		files     map[string]string
		folderRef bool // clusterNetwork names confDir rather than the file
		wantChain bool
	}{
		{
			name: "chain from the folder beside the clusterNetwork file",
			files: map[string]string{
				"10-cluster.conflist": clusterList,
				"aux/20-sbr.conf":     sbrConf,
				"aux/10-tuning.conf":  tuningConf,
				"aux/30-x.conflist":   `{"name":"x","plugins":[{"type":"ignored"}]}`,
			},
			wantChain: true,
		},
		{
			name: "chain from inside the clusterNetwork folder",
			files: map[string]string{
				"10-cluster.conflist": clusterList,
				"aux/20-sbr.conf":     sbrConf,
				"aux/10-tuning.conf":  tuningConf,
			},
			folderRef: true,
			wantChain: true,
		},
		{
			name:  "no folder, no chain",
			files: map[string]string{"10-cluster.conflist": clusterList},
		},
		{
			name: "folder without .conf plugins, no chain",
			files: map[string]string{
				"10-cluster.conflist": clusterList,
				"aux/README":          "nothing",
				"aux/10-x.json":       `{"type":"ignored"}`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			confDir := confDirOf(dir)
			for name, content := range tt.files {
				writeFile(t, filepath.Join(confDir, name), content)
			}
			ref := filepath.Join(confDir, "10-cluster.conflist")
			if tt.folderRef {
				ref = confDir
			}
			conf := testConf(t, dir, `,"clusterNetwork":`+quoteJSON(ref)+`,"auxiliaryCNIChainName":"aux"`)
			conf.CNIVersion = "1.1.0"
			in := Input{Conf: conf, Req: addRequest(t, defaultArgs), Pod: testPod(),
				NADs:       nads([3]string{"ns1", "net-a", `{"cniVersion":"1.0.0","type":"macvlan"}`}),
				Selections: parseSel(t, "net-a")}
			planned, err := Resolve(t.Context(), in)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			want := []summary{
				{Network: "cluster", IfName: "eth0", Default: true},
				{Network: "ns1/net-a", IfName: "net1", NAD: "ns1/net-a", Selection: "ns1/net-a"},
			}
			if tt.wantChain {
				want = append(want, summary{Network: "aux", IfName: "net2"})
			}
			if diff := cmp.Diff(want, summarize(planned)); diff != "" {
				t.Fatalf("planned (-want +got):\n%s", diff)
			}
			for i, p := range planned {
				if p.Auxiliary != (tt.wantChain && i == len(planned)-1) {
					t.Errorf("%s Auxiliary = %v", p.Network, p.Auxiliary)
				}
			}
			if !tt.wantChain {
				return
			}
			wantConfig := map[string]any{
				"cniVersion":   "1.1.0",
				"name":         "aux",
				"disableCheck": true,
				"plugins": []any{
					map[string]any{"type": "passthru", "name": "passthru-cni"},
					map[string]any{"type": "tuning", "sysctl": map[string]any{"net.ipv4.conf.eth0.rp_filter": "0"}},
					map[string]any{"type": "sbr"},
				},
			}
			aux := planned[len(planned)-1]
			if diff := cmp.Diff(wantConfig, decodeExact(t, aux.Config)); diff != "" {
				t.Errorf("auxiliary chain config (-want +got):\n%s", diff)
			}
			if aux.NAD != nil || aux.Selection != nil || aux.Default {
				t.Errorf("auxiliary chain has NAD %v selection %v default %v, want none", aux.NAD, aux.Selection, aux.Default)
			}
		})
	}
}

// TestResolveAuxiliaryChainRefused proves that the auxiliary chain is refused
// with a *ConfigError when clusterNetwork is not a path (a NAD or network name,
// or inline delegates), since its folder could not be found, and when the chain
// name cannot name a folder.
func TestResolveAuxiliaryChainRefused(t *testing.T) {
	tests := []struct {
		name  string
		extra func(confDir string) string
	}{
		{
			name:  "clusterNetwork is a name",
			extra: func(string) string { return `,"clusterNetwork":"cluster","auxiliaryCNIChainName":"aux"` },
		},
		{
			name: "inline delegates",
			extra: func(string) string {
				return `,"delegates":[{"name":"cbr0","type":"bridge"}],"auxiliaryCNIChainName":"aux"`
			},
		},
		{
			name: "chain name ..",
			extra: func(confDir string) string {
				return `,"clusterNetwork":` + quoteJSON(filepath.Join(confDir, "10-cluster.conflist")) + `,"auxiliaryCNIChainName":".."`
			},
		},
		{
			name: "chain name with a slash",
			extra: func(confDir string) string {
				return `,"clusterNetwork":` + quoteJSON(filepath.Join(confDir, "10-cluster.conflist")) + `,"auxiliaryCNIChainName":"../aux"`
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			confDir := confDirOf(dir)
			writeFile(t, filepath.Join(confDir, "10-cluster.conflist"), `{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge"}]}`)
			writeFile(t, filepath.Join(confDir, "aux", "10-tuning.conf"), tuningConf)
			conf := testConf(t, dir, tt.extra(confDir))
			_, err := Resolve(t.Context(), Input{Conf: conf, Req: addRequest(t, defaultArgs)})
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Resolve error = %v, want *ConfigError", err)
			}
		})
	}
}

// TestResolveSubdirectoryPluginsOnly proves that a .conflist without a "plugins"
// key takes all its plugins from the folder named after it, as libcni's
// NetworkConfFromFile accepts (only loadOnlyInlinedPlugins requires "plugins").
func TestResolveSubdirectoryPluginsOnly(t *testing.T) {
	dir := t.TempDir()
	confDir := confDirOf(dir)
	path := filepath.Join(confDir, "10-cluster.conflist")
	writeFile(t, path, `{"cniVersion":"1.0.0","name":"cluster"}`)
	writeFile(t, filepath.Join(confDir, "cluster", "10-bridge.conf"), `{"type":"bridge"}`)
	writeFile(t, filepath.Join(confDir, "cluster", "20-tuning.conf"), tuningConf)
	conf := testConf(t, dir, `,"clusterNetwork":`+quoteJSON(path))
	planned, err := Resolve(t.Context(), Input{Conf: conf, Req: addRequest(t, defaultArgs)})
	if err != nil {
		t.Fatalf("a conflist whose plugins all live in its folder was refused: %v", err)
	}
	if diff := cmp.Diff([]string{"bridge", "tuning"}, pluginTypes(t, planned[0].Config)); diff != "" {
		t.Errorf("plugin types (-want +got):\n%s", diff)
	}
}
