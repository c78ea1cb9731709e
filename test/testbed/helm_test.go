package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// demoChart is a tiny chart: one ConfigMap that shows the release, the namespace
// and a value.
var demoChart = map[string]string{
	"Chart.yaml": `apiVersion: v2
name: demo
description: A chart for the test bed's own tests.
version: 0.1.0
icon: https://example.com/icon.png
`,
	"values.yaml": `# greeting ends up in the ConfigMap.
greeting: hello
`,
	"templates/configmap.yaml": `# A comment-only document comes first, as in many charts.
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
  namespace: {{ .Release.Namespace }}
data:
  greeting: {{ required "greeting is required" .Values.greeting | quote }}
`,
}

// writeChart writes files (relative path to content) into a new chart folder.
func writeChart(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "chart")
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

// withFiles returns a copy of base with the given files replaced or added.
func withFiles(base map[string]string, files map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range files {
		out[k] = v
	}
	return out
}

// recordingTB stands in for a test so a test can watch a helper fail: Fatal ends
// only the goroutine that runRecording started.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	failed bool
	msgs   []string
}

func (r *recordingTB) record(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, msg)
}

func (r *recordingTB) Helper()                           {}
func (r *recordingTB) Errorf(format string, args ...any) { r.record(fmt.Sprintf(format, args...)) }
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.record(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (r *recordingTB) Error(args ...any) { r.record(fmt.Sprint(args...)) }
func (r *recordingTB) Fatal(args ...any) {
	r.record(fmt.Sprint(args...))
	runtime.Goexit()
}

// runRecording runs f with a recordingTB whose temporary folders and cleanups are
// t's, and returns what f reported.
func runRecording(t *testing.T, f func(tb testing.TB)) (failed bool, report string) {
	r := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed, strings.Join(r.msgs, "\n")
}

func TestHelmTemplate(t *testing.T) {
	Require(t)
	chart := writeChart(t, demoChart)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{
			name: "defaults",
			want: []string{"name: web-config", "namespace: team-a", `greeting: "hello"`},
		},
		{
			name: "set a value",
			args: []string{"--set", "greeting=bye"},
			want: []string{"name: web-config", `greeting: "bye"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := HelmTemplate(t, chart, "web", "team-a", tt.args...)
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("rendered manifest lacks %q:\n%s", w, out)
				}
			}
			objs, err := decodeManifest(out)
			if err != nil {
				t.Fatalf("rendered manifest does not decode: %v\n%s", err, out)
			}
			if len(objs) != 1 || objs[0].GetKind() != "ConfigMap" {
				t.Errorf("rendered %d objects, want the one ConfigMap:\n%s", len(objs), out)
			}
		})
	}
}

// TestHelmTemplateFailsWithHelmsMessage checks that a chart that does not render
// fails the test, with what helm said.
func TestHelmTemplateFailsWithHelmsMessage(t *testing.T) {
	Require(t)
	chart := writeChart(t, demoChart)
	failed, report := runRecording(t, func(tb testing.TB) {
		HelmTemplate(tb, chart, "web", "team-a", "--set", "greeting=null")
		tb.Errorf("HelmTemplate returned")
	})
	if !failed || !strings.Contains(report, "greeting is required") || strings.Contains(report, "HelmTemplate returned") {
		t.Errorf("HelmTemplate of a chart that fails to render: failed=%v, report:\n%s", failed, report)
	}
}

func TestHelmLint(t *testing.T) {
	Require(t)
	tests := []struct {
		name       string
		files      map[string]string
		wantFail   bool
		wantReport string
	}{
		{name: "clean chart", files: demoChart, wantReport: "1 chart(s) linted, 0 chart(s) failed"},
		{
			// A template that renders YAML that does not parse is an error.
			name:       "broken YAML",
			files:      withFiles(demoChart, map[string]string{"templates/broken.yaml": "kind: ConfigMap\nmetadata: [\n"}),
			wantFail:   true,
			wantReport: "templates/broken.yaml",
		},
		{
			// A deprecated API is only a warning, which fails under --strict.
			name: "warning under --strict",
			files: withFiles(demoChart, map[string]string{
				"templates/pdb.yaml": "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: {{ .Release.Name }}-pdb\nspec:\n  minAvailable: 1\n",
			}),
			wantFail:   true,
			wantReport: "[WARNING] templates/pdb.yaml: policy/v1beta1 PodDisruptionBudget is deprecated",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chart := writeChart(t, tt.files)
			var out []byte
			failed, report := runRecording(t, func(tb testing.TB) { out = HelmLint(tb, chart) })
			if failed != tt.wantFail {
				t.Fatalf("HelmLint failed=%v, want %v; report:\n%s%s", failed, tt.wantFail, report, out)
			}
			if !strings.Contains(report+string(out), tt.wantReport) {
				t.Errorf("lint report lacks %q:\n%s%s", tt.wantReport, report, out)
			}
		})
	}
}

// TestHelmEnvStaysInTheTempDir checks with `helm env` that every folder helm uses
// lies in the test's own folder, not the user's.
func TestHelmEnvStaysInTheTempDir(t *testing.T) {
	b := Require(t)
	home := t.TempDir()
	cmd := exec.Command(b.Helm(), "env")
	cmd.Env = helmEnv(home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helm env: %v\n%s", err, out)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		if !strings.HasPrefix(v, "/") || k == "HELM_BIN" {
			continue // not a folder: a namespace, a QPS, a flag, helm itself
		}
		seen++
		if !strings.HasPrefix(v, home+string(filepath.Separator)) {
			t.Errorf("helm env %s=%s lies outside the test's folder %s", k, v, home)
		}
	}
	if seen < 5 {
		t.Errorf("helm env listed %d paths, want all its folders:\n%s", seen, out)
	}
}

// TestHelmTemplateThenApplyDryRun is the way chart tests use the two helpers: the
// rendered chart must pass the API server's validation without warnings.
func TestHelmTemplateThenApplyDryRun(t *testing.T) {
	Require(t)
	cp := SharedControlPlane(t)
	out := HelmTemplate(t, writeChart(t, demoChart), "web", "default")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	warnings, err := ApplyDryRun(ctx, cp.AdminConfig(), out)
	if err != nil || len(warnings) > 0 {
		t.Errorf("dry run of the rendered chart: error %v, warnings %q\nmanifest:\n%s", err, warnings, out)
	}
}
