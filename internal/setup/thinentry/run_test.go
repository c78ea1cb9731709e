package thinentry

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// host is a node's folders as the installer's container sees them.
type host struct {
	bin, conf, multusConf, sa, image string
}

func newHost(t *testing.T) host {
	root := t.TempDir()
	h := host{bin: filepath.Join(root, "opt/cni/bin"), conf: filepath.Join(root, "etc/cni/net.d"),
		multusConf: filepath.Join(root, "etc/cni/multus/net.d"), sa: filepath.Join(root, "sa"), image: filepath.Join(root, "image")}
	for _, d := range []string{h.bin, h.conf, h.sa, h.image} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(h.sa, "token"): "token-1", filepath.Join(h.sa, "ca.crt"): "ca",
		filepath.Join(h.image, "multus"): "thin plugin", filepath.Join(h.image, "passthru"): "passthru",
		filepath.Join(h.conf, "10-primary.conflist"): `{"cniVersion":"1.0.0","name":"primary","plugins":[{"type":"bridge"}]}`,
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func (h host) args(extra ...string) []string {
	return append([]string{"--cni-bin-dir=" + h.bin, "--cni-conf-dir=" + h.conf, "--multus-autoconfig-dir=" + h.conf,
		"--multus-cni-conf-dir=" + h.multusConf, "--multus-bin-file=" + filepath.Join(h.image, "multus"),
		"--service-account-dir=" + h.sa}, extra...)
}

var testEnv = Env{Getenv: func(k string) string {
	return map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}[k]
}, Log: slog.New(slog.DiscardHandler), PrimaryTimeout: 30 * time.Second}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestRunInstallsAndCleansUp: binaries, kubeconfig and configuration appear,
// the probe passes, and --cleanup-config-on-exit removes what was written to
// the configuration folder (and only that) on exit.
func TestRunInstallsAndCleansUp(t *testing.T) {
	h := newHost(t)
	o, err := Parse(h.args("--cleanup-config-on-exit", "--namespace-isolation", "--multus-log-level=debug"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, o, testEnv) }()
	t.Cleanup(cancel)
	conf := filepath.Join(h.conf, "00-multus.conflist")
	kc := filepath.Join(h.conf, "multus.d", "multus.kubeconfig")
	waitFor(t, "the configuration", func() bool { return fileExists(conf) })
	for _, p := range []string{filepath.Join(h.bin, "multus"), filepath.Join(h.bin, "passthru"), kc, h.multusConf} {
		if !fileExists(p) {
			t.Errorf("%s missing", p)
		}
	}
	var got struct {
		Plugins []map[string]any `json:"plugins"`
	}
	data, _ := os.ReadFile(conf)
	if err := json.Unmarshal(data, &got); err != nil || len(got.Plugins) != 1 {
		t.Fatalf("configuration %s: %v", data, err)
	}
	p := got.Plugins[0]
	if p["type"] != "multus" || p["kubeconfig"] != "/etc/cni/net.d/multus.d/multus.kubeconfig" || p["namespaceIsolation"] != true ||
		p["logLevel"] != "debug" || p["logToStderr"] != true {
		t.Errorf("plugin configuration %v", p)
	}
	if err := Probe(o, testEnv); err != nil {
		t.Errorf("probe of a complete install: %v", err)
	}
	if err := os.WriteFile(filepath.Join(h.sa, "token"), []byte("token-2"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the kubeconfig to follow the token", func() bool {
		b, _ := os.ReadFile(kc)
		return strings.Contains(string(b), "token-2")
	})
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if fileExists(conf) || fileExists(kc) {
		t.Error("configuration or kubeconfig left behind with --cleanup-config-on-exit")
	}
	if !fileExists(filepath.Join(h.bin, "multus")) {
		t.Error("the plugin binary was removed: pods that exist could not be deleted")
	}
	if err := Probe(o, testEnv); err == nil {
		t.Error("probe passed with nothing in place")
	}
}

// TestRunFailsClearly: what an operator gets wrong is named.
func TestRunFailsClearly(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(h host) []string
		want   string
	}{
		"no bin folder": {func(h host) []string { os.RemoveAll(h.bin); return h.args() }, "--cni-bin-dir"},
		"no binary":     {func(h host) []string { os.Remove(filepath.Join(h.image, "multus")); return h.args() }, "multus"},
		"no token":      {func(h host) []string { os.Remove(filepath.Join(h.sa, "token")); return h.args() }, "ServiceAccount token"},
		"self as primary": {func(h host) []string {
			return h.args("--multus-master-cni-file-name=00-multus.conf")
		}, "itself"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHost(t)
			o, err := Parse(tc.mutate(h), nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := Run(ctx, o, testEnv); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
