package attach

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/google/go-cmp/cmp"
)

// TestLoadingMatchesLibcni holds this package's copy of libcni's configuration
// loading (confFiles, and a conflist's subdirectory plugins), which it cannot
// call (the engine must not link libcni), to libcni's own answers on the same
// folders: the same files, and the same plugins in the same order, or an error
// from both. Only the test links libcni.
func TestLoadingMatchesLibcni(t *testing.T) {
	const list = `{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"bridge","mtu":12345678901234567890}]}`
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"folder plugins in name order, other files ignored", map[string]string{
			"net.conflist": list, "net/20-sbr.conf": sbrConf, "net/10-tuning.conf": tuningConf,
			"net/05-x.conflist": `{"name":"x","plugins":[{"type":"ignored"}]}`, "net/07-x.json": `{"type":"ignored"}`,
			"net/README": "not a plugin", "net/sub/30-deep.conf": `{"type":"ignored"}`}},
		{"no folder", map[string]string{"net.conflist": list}},
		{"no plugins of its own", map[string]string{
			"net.conflist": `{"cniVersion":"1.0.0","name":"net"}`, "net/10-bridge.conf": `{"type":"bridge"}`}},
		{"loadOnlyInlinedPlugins true", map[string]string{
			"net.conflist":       `{"cniVersion":"1.0.0","name":"net","loadOnlyInlinedPlugins":true,"plugins":[{"type":"bridge"}]}`,
			"net/10-tuning.conf": tuningConf}},
		{"loadOnlyInlinedPlugins as the string TRUE", map[string]string{
			"net.conflist":       `{"cniVersion":"1.0.0","name":"net","loadOnlyInlinedPlugins":"TRUE","plugins":[{"type":"bridge"}]}`,
			"net/10-tuning.conf": tuningConf}},
		{"loadOnlyInlinedPlugins as the string false", map[string]string{
			"net.conflist":       `{"cniVersion":"1.0.0","name":"net","loadOnlyInlinedPlugins":"false","plugins":[{"type":"bridge"}]}`,
			"net/10-tuning.conf": tuningConf}},
		{"loadOnlyInlinedPlugins neither true nor false", map[string]string{
			"net.conflist": `{"cniVersion":"1.0.0","name":"net","loadOnlyInlinedPlugins":"yes","plugins":[{"type":"bridge"}]}`}},
		{"loadOnlyInlinedPlugins null", map[string]string{
			"net.conflist": `{"cniVersion":"1.0.0","name":"net","loadOnlyInlinedPlugins":null,"plugins":[{"type":"bridge"}]}`}},
		{"folder plugin without type", map[string]string{"net.conflist": list, "net/10-bad.conf": `{"name":"x"}`}},
		{"folder plugin not JSON", map[string]string{"net.conflist": list, "net/10-bad.conf": `{`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				writeFile(t, filepath.Join(dir, name), content)
			}
			path := filepath.Join(dir, "net.conflist")

			want, wantErr := libcni.NetworkConfFromFile(path)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got, gotErr := withSubdirectoryPlugins(path, data)
			if (wantErr != nil) != (gotErr != nil) {
				t.Fatalf("error = %v, libcni's = %v", gotErr, wantErr)
			}
			if wantErr != nil {
				return
			}
			var wantPlugins []any
			for _, p := range want.Plugins {
				wantPlugins = append(wantPlugins, decodeAny(t, p.Bytes))
			}
			var gotList struct {
				Plugins []json.RawMessage `json:"plugins"`
			}
			if err := json.Unmarshal(got, &gotList); err != nil {
				t.Fatal(err)
			}
			var gotPlugins []any
			for _, p := range gotList.Plugins {
				gotPlugins = append(gotPlugins, decodeAny(t, p))
			}
			if diff := cmp.Diff(wantPlugins, gotPlugins); diff != "" {
				t.Errorf("plugins (-libcni +ours):\n%s", diff)
			}

			for _, exts := range [][]string{{".conf"}, {".conflist"}, {".conf", ".json"}} {
				for _, d := range []string{dir, filepath.Join(dir, "net"), filepath.Join(dir, "missing")} {
					want, wantErr := libcni.ConfFiles(d, exts)
					got, gotErr := confFiles(d, exts)
					if (wantErr != nil) != (gotErr != nil) || !cmp.Equal(want, got, cmpEmptyEqual) {
						t.Errorf("confFiles(%s, %v) = %v, %v; libcni's = %v, %v", d, exts, got, gotErr, want, wantErr)
					}
				}
			}
		})
	}
}

// cmpEmptyEqual makes a nil and an empty list of files the same answer.
var cmpEmptyEqual = cmp.FilterValues(func(a, b []string) bool { return len(a) == 0 && len(b) == 0 },
	cmp.Comparer(func(a, b []string) bool { return true }))

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
