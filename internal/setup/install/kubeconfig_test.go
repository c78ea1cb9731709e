package install

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/polynet-cni/polynet/internal/adapter/apiclient"
)

// projected lays out a ServiceAccount folder the way the kubelet's projected
// volume does: the files are symlinks through ..data, which points at a
// timestamped folder, and an update writes a new folder and renames a new
// ..data symlink over the old one.
type projected struct {
	t   *testing.T
	dir string
	n   int
}

func newProjected(t *testing.T, token, ca string) *projected {
	p := &projected{t: t, dir: t.TempDir()}
	p.update(token, ca)
	for _, f := range []string{"token", "ca.crt"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(p.dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func (p *projected) update(token, ca string) {
	p.t.Helper()
	p.n++
	ts := fmt.Sprintf("..2026_12_02_00_00_%02d.%d", p.n, p.n)
	if err := os.Mkdir(filepath.Join(p.dir, ts), 0o755); err != nil {
		p.t.Fatal(err)
	}
	for f, c := range map[string]string{"token": token, "ca.crt": ca} {
		if err := os.WriteFile(filepath.Join(p.dir, ts, f), []byte(c), 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
	tmp := filepath.Join(p.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(p.dir, "..data")); err != nil {
		p.t.Fatal(err)
	}
}

// jwt is a token-shaped string with an expiry, as the kubelet's are.
func jwt(exp int64, id string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(fmt.Sprintf(`{"exp":%d,"jti":%q}`, exp, id))) + ".sig"
}

const testCA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func TestKubeconfigSync(t *testing.T) {
	sa := newProjected(t, jwt(1893456000, "a")+"\n", testCA)
	out := filepath.Join(t.TempDir(), "multus.d", "multus.kubeconfig")
	k := &Kubeconfig{Path: out, ServiceAccountDir: sa.dir, Server: "https://[fd00::1]:443"}
	if wrote, err := k.Sync(); err != nil || !wrote {
		t.Fatalf("first Sync: wrote %v, %v", wrote, err)
	}
	info, err := os.Stat(out)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig mode %v (%v), want 0600: it holds a credential", info.Mode().Perm(), err)
	}
	// The thin plugin's own reader takes it.
	cfg, err := apiclient.LoadKubeconfig(out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://[fd00::1]:443" || cfg.Token != jwt(1893456000, "a") || string(cfg.CAData) != testCA || cfg.Insecure {
		t.Errorf("plugin reads %+v", cfg)
	}
	if wrote, err := k.Sync(); err != nil || wrote {
		t.Errorf("second Sync with nothing changed: wrote %v, %v", wrote, err)
	}
	if err := k.Fresh(); err != nil {
		t.Errorf("Fresh after Sync: %v", err)
	}
	sa.update(jwt(1893459600, "b"), testCA)
	if err := k.Fresh(); err == nil {
		t.Error("Fresh with a rotated token on disk gave no error")
	}

	k.Insecure = true
	if _, err := k.Sync(); err != nil {
		t.Fatal(err)
	}
	if cfg, err = apiclient.LoadKubeconfig(out); err != nil || !cfg.Insecure || len(cfg.CAData) != 0 || cfg.Token != jwt(1893459600, "b") {
		t.Errorf("insecure kubeconfig: %+v %v", cfg, err)
	}
	if err := k.Remove(); err != nil || exists(out) {
		t.Errorf("Remove: %v, still there: %v", err, exists(out))
	}
	if err := k.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestKubeconfigErrors(t *testing.T) {
	empty := newProjected(t, " \n", testCA)
	noCA := t.TempDir()
	if err := os.WriteFile(filepath.Join(noCA, "token"), []byte("t"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ dir, want string }{
		"no token":    {t.TempDir(), "ServiceAccount token"},
		"empty token": {empty.dir, "is empty"},
		"no CA":       {noCA, "cluster CA"},
	} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "kc")
			k := &Kubeconfig{Path: out, ServiceAccountDir: tc.dir, Server: "https://x:1"}
			if _, err := k.Sync(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Sync: %v, want an error with %q", err, tc.want)
			}
			if exists(out) {
				t.Error("a kubeconfig was written anyway")
			}
		})
	}
}

// TestKubeconfigRunFollowsRotation rotates the token the way the kubelet does
// and expects the file to follow within the bound, and to be restored when
// someone removes it.
func TestKubeconfigRunFollowsRotation(t *testing.T) {
	sa := newProjected(t, jwt(1893456000, "a"), testCA)
	out := filepath.Join(t.TempDir(), "kc")
	logs := &syncWriter{b: &bytes.Buffer{}}
	k := &Kubeconfig{Path: out, ServiceAccountDir: sa.dir, Server: "https://x:1", Log: slog.New(slog.NewTextHandler(logs, nil))}
	if _, err := k.Sync(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { k.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	for i, id := range []string{"b", "c"} {
		sa.update(jwt(1893456000+int64(i+1)*3600, id), testCA)
		eventually(t, "the kubeconfig to carry token "+id, func() bool {
			cfg, err := apiclient.LoadKubeconfig(out)
			return err == nil && cfg.Token == jwt(1893456000+int64(i+1)*3600, id)
		})
	}
	os.Remove(out)
	eventually(t, "the kubeconfig restored", func() bool { return exists(out) })
	if !strings.Contains(logs.String(), "tokenExpires=2030-01-01T02:00:00Z") {
		t.Errorf("the log does not say when the token expires:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), jwt(1893456000, "a")) {
		t.Error("the log shows the token")
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestInClusterServer(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, "https://10.96.0.1:443"},
		{map[string]string{"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}, "https://[fd00::1]:6443"},
		{map[string]string{"KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "80", "KUBERNETES_SERVICE_PROTOCOL": "http"}, "http://h:80"},
		{map[string]string{"KUBERNETES_SERVICE_HOST": "h"}, ""},
	} {
		got, err := InClusterServer(func(k string) string { return tc.env[k] })
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("%v: %q %v, want %q", tc.env, got, err, tc.want)
		}
	}
}

// syncWriter lets the refresher's goroutine log while the test reads.
type syncWriter struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
