package confdir

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/google/go-cmp/cmp"
)

// Configurations of the tests' folders.
const (
	netList    = `{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"bridge","mtu":12345678901234567890}]}`
	tuningConf = `{"type":"tuning","sysctl":{"net.ipv4.conf.eth0.rp_filter":"0"}}`
	sbrConf    = `{"type":"sbr"}`
)

// layout writes files, given by path relative to the returned folder.
func layout(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// rel is path relative to dir, "" for none.
func rel(t *testing.T, dir, path string) string {
	t.Helper()
	if path == "" {
		return ""
	}
	r, err := filepath.Rel(dir, path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestFind proves R-3.4.1's lookup of a network by name in a folder: the first
// .conflist in file name order whose "name" matches, else the first .conf or
// .json; files that do not parse, other extensions and subfolders are skipped;
// the answer is the file's own bytes, without the plugins of its folder; a
// missing folder or name is no error, a folder that cannot be listed is.
func TestFind(t *testing.T) {
	const (
		list  = `{"cniVersion":"1.0.0","name":"net-a","plugins":[{"type":"macvlan"}]}`
		conf  = `{"cniVersion":"1.0.0","name":"net-a","type":"ipvlan"}`
		other = `{"cniVersion":"1.0.0","name":"other","plugins":[{"type":"bridge"}]}`
	)
	tests := []struct {
		name     string
		files    map[string]string
		dir      string // relative to the layout; "missing" does not exist
		wantFile string
		wantErr  bool
	}{
		{name: "a conflist first, even when a conf's file name sorts first",
			files: map[string]string{"00-net-a.conf": conf, "99-net-a.conflist": list}, wantFile: "99-net-a.conflist"},
		{name: "a conf or json when no conflist has the name",
			files: map[string]string{"10-other.conflist": other, "20-net-a.json": conf}, wantFile: "20-net-a.json"},
		{name: "confs and jsons in one file name order",
			files: map[string]string{"20-net-a.conf": conf, "10-net-a.json": conf}, wantFile: "10-net-a.json"},
		{name: "the first of two conflists of the name",
			files: map[string]string{"20-b.conflist": list, "10-a.conflist": list}, wantFile: "10-a.conflist"},
		{name: "files that do not parse are skipped",
			files: map[string]string{"00-broken.conflist": `{"name":`, "05-null.conf": `null`, "10-net-a.conf": conf}, wantFile: "10-net-a.conf"},
		{name: "other extensions and subfolders are not looked at",
			files: map[string]string{"10-net-a.txt": conf, "sub/10-net-a.conf": conf, "net-a.conflist/x": list}},
		{name: "the file's own bytes, its plugin folder aside",
			files: map[string]string{"10-net-a.conflist": list, "net-a/10-tuning.conf": tuningConf}, wantFile: "10-net-a.conflist"},
		{name: "no file of the name", files: map[string]string{"10-other.conflist": other}},
		{name: "no folder", dir: "missing"},
		{name: "a folder that is a file fails", files: map[string]string{"file": conf}, dir: "file", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := layout(t, tt.files)
			data, file, err := Source{}.Find(filepath.Join(root, tt.dir), "net-a")
			if (err != nil) != tt.wantErr {
				t.Fatalf("Find error = %v, want error %v", err, tt.wantErr)
			}
			if got := rel(t, root, file); got != tt.wantFile {
				t.Errorf("Find file = %q, want %q", got, tt.wantFile)
			}
			if want := tt.files[tt.wantFile]; string(data) != want {
				t.Errorf("Find bytes = %s, want the file's own %s", data, want)
			}
		})
	}
}

// TestLoad proves how a configuration given by path is loaded: a file, or a
// folder's first .conf, .conflist or .json file in name order; a conflist
// with the *.conf plugins (name order) of the folder named after it appended,
// as libcni's NetworkConfFromFile appends them, unless loadOnlyInlinedPlugins
// (a JSON boolean, or a string true or false in any case) says not to; a
// conflist with nothing to append, a single conf and a conflist file holding
// a single conf keep their exact bytes. A path without configuration is an
// error wrapping fs.ErrNotExist; one libcni refuses, or whose name cannot name
// a folder, another error with the file. Where the path is a conflist libcni
// also loads, the plugins are libcni's, in its order.
func TestLoad(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		path  string
		// wantFile is the file read; wantTypes its plugins' types; wantBytes,
		// when set, its exact bytes.
		wantFile     string
		wantTypes    []string
		wantBytes    string
		wantNotExist bool
		wantErr      string
		// sameAsLibcni compares the plugins with libcni's NetworkConfFromFile.
		sameAsLibcni bool
	}{
		{
			name: "folder plugins in name order, other files ignored",
			files: map[string]string{
				"net.conflist": netList, "net/20-sbr.conf": sbrConf, "net/10-tuning.conf": tuningConf,
				"net/05-x.conflist": `{"name":"x","plugins":[{"type":"ignored"}]}`, "net/07-x.json": `{"type":"ignored"}`,
				"net/README": "not a plugin", "net/sub/30-deep.conf": `{"type":"ignored"}`},
			path: "net.conflist", wantFile: "net.conflist", wantTypes: []string{"bridge", "tuning", "sbr"}, sameAsLibcni: true,
		},
		{
			name:  "no folder: the exact bytes",
			files: map[string]string{"net.conflist": netList},
			path:  "net.conflist", wantFile: "net.conflist", wantTypes: []string{"bridge"}, wantBytes: netList, sameAsLibcni: true,
		},
		{
			name:  "an empty folder: the exact bytes",
			files: map[string]string{"net.conflist": netList, "net/README": "nothing here"},
			path:  "net.conflist", wantFile: "net.conflist", wantTypes: []string{"bridge"}, wantBytes: netList, sameAsLibcni: true,
		},
		{
			name: "no plugins of its own",
			files: map[string]string{
				"net.conflist": `{"cniVersion":"1.0.0","name":"net"}`, "net/10-bridge.conf": `{"type":"bridge"}`, "net/20-tuning.conf": tuningConf},
			path: "net.conflist", wantFile: "net.conflist", wantTypes: []string{"bridge", "tuning"}, sameAsLibcni: true,
		},
		{
			name: "loadOnlyInlinedPlugins true",
			files: map[string]string{
				"net.conflist":       `{"cniVersion":"1.0.0","name":"net","loadOnlyInlinedPlugins":true,"plugins":[{"type":"bridge"}]}`,
				"net/10-tuning.conf": tuningConf},
			path: "net.conflist", wantFile: "net.conflist", wantTypes: []string{"bridge"},
			wantBytes: `{"cniVersion":"1.0.0","name":"net","loadOnlyInlinedPlugins":true,"plugins":[{"type":"bridge"}]}`, sameAsLibcni: true,
		},
		{
			name: "loadOnlyInlinedPlugins as the string TRUE",
			files: map[string]string{
				"net.conflist":       `{"cniVersion":"1.0.0","name":"net","loadOnlyInlinedPlugins":"TRUE","plugins":[{"type":"bridge"}]}`,
				"net/10-tuning.conf": tuningConf},
			path: "net.conflist", wantFile: "net.conflist", wantTypes: []string{"bridge"}, sameAsLibcni: true,
		},
		{
			name: "loadOnlyInlinedPlugins as the string false",
			files: map[string]string{
				"net.conflist":       `{"cniVersion":"1.0.0","name":"net","loadOnlyInlinedPlugins":"false","plugins":[{"type":"bridge"}]}`,
				"net/10-tuning.conf": tuningConf},
			path: "net.conflist", wantFile: "net.conflist", wantTypes: []string{"bridge", "tuning"}, sameAsLibcni: true,
		},
		{
			name:  "loadOnlyInlinedPlugins neither true nor false",
			files: map[string]string{"net.conflist": `{"cniVersion":"1.0.0","name":"net","loadOnlyInlinedPlugins":"yes","plugins":[{"type":"bridge"}]}`},
			path:  "net.conflist", wantFile: "net.conflist", wantErr: "loadOnlyInlinedPlugins", sameAsLibcni: true,
		},
		{
			name:  "loadOnlyInlinedPlugins null",
			files: map[string]string{"net.conflist": `{"cniVersion":"1.0.0","name":"net","loadOnlyInlinedPlugins":null,"plugins":[{"type":"bridge"}]}`},
			path:  "net.conflist", wantFile: "net.conflist", wantErr: "loadOnlyInlinedPlugins", sameAsLibcni: true,
		},
		{
			name:  "a folder plugin without type",
			files: map[string]string{"net.conflist": netList, "net/10-bad.conf": `{"name":"x"}`},
			path:  "net.conflist", wantFile: "net.conflist", wantErr: "net: error parsing configuration: missing 'type'", sameAsLibcni: true,
		},
		{
			name:  "a folder plugin not JSON",
			files: map[string]string{"net.conflist": netList, "net/10-bad.conf": `{`},
			path:  "net.conflist", wantFile: "net.conflist", wantErr: "plugin folder", sameAsLibcni: true,
		},
		{
			name: "the conflist's other keys and plugins keep their JSON",
			files: map[string]string{
				"net.conflist":       `{"cniVersion":"1.0.0","name":"net","disableGC":true,"plugins":[{"type":"bridge","bridge":"cni0","big":12345678901234567890}]}`,
				"net/10-tuning.conf": tuningConf},
			path: "net.conflist", wantFile: "net.conflist", wantTypes: []string{"bridge", "tuning"},
			wantBytes: `{"cniVersion":"1.0.0","disableGC":true,"name":"net","plugins":[{"type":"bridge","bridge":"cni0","big":12345678901234567890},` + tuningConf + `]}`,
		},
		{
			name:  "a single conf gets nothing",
			files: map[string]string{"net.conf": `{"cniVersion":"1.0.0","name":"net","type":"bridge"}`, "net/10-tuning.conf": tuningConf},
			path:  "net.conf", wantFile: "net.conf", wantBytes: `{"cniVersion":"1.0.0","name":"net","type":"bridge"}`,
		},
		{
			name:  "a conflist file holding a single conf gets nothing",
			files: map[string]string{"net.conflist": `{"cniVersion":"1.0.0","name":"net","type":"bridge"}`, "net/10-tuning.conf": tuningConf},
			path:  "net.conflist", wantFile: "net.conflist", wantBytes: `{"cniVersion":"1.0.0","name":"net","type":"bridge"}`,
		},
		{
			name: "a folder: its first configuration file in name order",
			files: map[string]string{
				"d/00-notes.txt": "not a configuration", "d/20-b.conf": `{"cniVersion":"1.0.0","name":"b","type":"bridge"}`,
				"d/10-a.conflist": `{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"ptp"}]}`},
			path: "d", wantFile: "d/10-a.conflist", wantBytes: `{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"ptp"}]}`,
		},
		{
			name:  "a folder's conflist gets the plugins of its own folder",
			files: map[string]string{"d/10-net.conflist": netList, "d/net/10-tuning.conf": tuningConf},
			path:  "d", wantFile: "d/10-net.conflist", wantTypes: []string{"bridge", "tuning"},
		},
		{
			name:  "a folder without configuration files",
			files: map[string]string{"d/README": "nothing here", "d/sub/10-a.conf": `{"name":"a","type":"bridge"}`},
			path:  "d", wantNotExist: true, wantErr: "no net configurations found in",
		},
		{
			name: "no such file", path: "missing.conf", wantFile: "missing.conf", wantNotExist: true, wantErr: "missing.conf",
		},
		{
			name:  "a name that is ..",
			files: map[string]string{"d/net.conflist": `{"cniVersion":"1.0.0","name":"..","plugins":[{"type":"bridge"}]}`},
			path:  "d/net.conflist", wantFile: "d/net.conflist", wantErr: "cannot name a plugin folder",
		},
		{
			name:  "a name with a slash",
			files: map[string]string{"d/net.conflist": `{"cniVersion":"1.0.0","name":"../etc","plugins":[{"type":"bridge"}]}`},
			path:  "d/net.conflist", wantFile: "d/net.conflist", wantErr: "cannot name a plugin folder",
		},
		{
			name:  "a name with a slash inside",
			files: map[string]string{"d/net.conflist": `{"cniVersion":"1.0.0","name":"a/b","plugins":[{"type":"bridge"}]}`},
			path:  "d/net.conflist", wantFile: "d/net.conflist", wantErr: "cannot name a plugin folder",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := layout(t, tt.files)
			path := filepath.Join(root, tt.path)
			data, file, err := Source{}.Load(path)
			if got := rel(t, root, file); got != tt.wantFile {
				t.Errorf("Load file = %q, want %q", got, tt.wantFile)
			}
			if errors.Is(err, fs.ErrNotExist) != tt.wantNotExist {
				t.Errorf("Load error = %v, want fs.ErrNotExist %v", err, tt.wantNotExist)
			}
			if tt.sameAsLibcni {
				sameAsLibcni(t, path, data, err)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load error = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if tt.wantBytes != "" && string(data) != tt.wantBytes {
				t.Errorf("Load bytes = %s, want %s", data, tt.wantBytes)
			}
			if tt.wantTypes != nil {
				if diff := cmp.Diff(tt.wantTypes, pluginTypes(t, data)); diff != "" {
					t.Errorf("plugin types (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// sameAsLibcni holds Load's answer for the conflist at path to libcni's
// NetworkConfFromFile: the same plugins in the same order, or an error from
// both.
func sameAsLibcni(t *testing.T, path string, data []byte, err error) {
	t.Helper()
	want, wantErr := libcni.NetworkConfFromFile(path)
	if (wantErr != nil) != (err != nil) {
		t.Fatalf("Load error = %v, libcni's = %v", err, wantErr)
	}
	if wantErr != nil {
		return
	}
	var wantPlugins []any
	for _, p := range want.Plugins {
		wantPlugins = append(wantPlugins, decodeAny(t, p.Bytes))
	}
	var got struct {
		Plugins []json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	var gotPlugins []any
	for _, p := range got.Plugins {
		gotPlugins = append(gotPlugins, decodeAny(t, p))
	}
	if diff := cmp.Diff(wantPlugins, gotPlugins); diff != "" {
		t.Errorf("plugins (-libcni +ours):\n%s", diff)
	}
}

// TestPlugins proves where the auxiliary chain's plugins come from: the
// *.conf files, in name order, of the folder of the chain's name beside the
// file ref names or inside the folder ref names; none without the folder; a
// plugin libcni refuses and a name that cannot name a folder are errors.
func TestPlugins(t *testing.T) {
	files := map[string]string{
		"net.d/10-cluster.conflist": netList,
		"net.d/aux/20-sbr.conf":     sbrConf,
		"net.d/aux/10-tuning.conf":  tuningConf,
		"net.d/aux/30-x.conflist":   `{"name":"x","plugins":[{"type":"ignored"}]}`,
		"net.d/aux/40-x.json":       `{"type":"ignored"}`,
		"net.d/bad/10-bad.conf":     `{"name":"no type"}`,
	}
	tests := []struct {
		name      string
		ref       string
		chain     string
		wantTypes []string
		wantErr   string
	}{
		{name: "beside the clusterNetwork file", ref: "net.d/10-cluster.conflist", chain: "aux", wantTypes: []string{"tuning", "sbr"}},
		{name: "inside the clusterNetwork folder", ref: "net.d", chain: "aux", wantTypes: []string{"tuning", "sbr"}},
		{name: "beside a clusterNetwork file that is gone", ref: "net.d/gone.conflist", chain: "aux", wantTypes: []string{"tuning", "sbr"}},
		{name: "no folder", ref: "net.d", chain: "none"},
		{name: "a plugin without type", ref: "net.d", chain: "bad", wantErr: "missing 'type'"},
		{name: "a chain name ..", ref: "net.d/aux/10-tuning.conf", chain: "..", wantErr: "cannot name a plugin folder"},
		{name: "a chain name with a slash", ref: "net.d", chain: "../net.d/aux", wantErr: "cannot name a plugin folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := layout(t, files)
			got, err := Source{}.Plugins(filepath.Join(root, tt.ref), tt.chain)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Plugins error = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Plugins: %v", err)
			}
			var types []string
			for _, p := range got {
				types = append(types, pluginTypes(t, p)...)
			}
			if diff := cmp.Diff(tt.wantTypes, types); diff != "" {
				t.Errorf("plugin types (-want +got):\n%s", diff)
			}
			if len(got) > 0 && string(got[0]) != tuningConf {
				t.Errorf("first plugin %s, want the file's bytes %s", got[0], tuningConf)
			}
		})
	}
}

// pluginTypes returns the "type" of a single conf, or of every plugin of a
// conflist.
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

// decodeAny decodes JSON for comparing plugins that libcni re-encodes (an
// inline plugin's large integer loses digits there) with ours, kept byte for
// byte.
func decodeAny(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return v
}
