package apiclient

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

// TestInClusterConfig: the service address comes from the environment (IPv6
// bracketed) and the credentials from the ServiceAccount folder, the kubelet's
// mount point unless given; without both variables the plugin is not in a
// cluster.
func TestInClusterConfig(t *testing.T) {
	const kubeletDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	tests := []struct {
		name    string
		env     map[string]string
		dir     string
		want    *Config
		wantErr bool
	}{
		{"IPv4", map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, "",
			&Config{Host: "https://10.96.0.1:443", CAFile: kubeletDir + "/ca.crt", TokenFile: kubeletDir + "/token", ServiceAccount: true}, false},
		{"IPv6", map[string]string{"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}, "",
			&Config{Host: "https://[fd00::1]:6443", CAFile: kubeletDir + "/ca.crt", TokenFile: kubeletDir + "/token", ServiceAccount: true}, false},
		{"folder given", map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, "/sa",
			&Config{Host: "https://10.96.0.1:443", CAFile: "/sa/ca.crt", TokenFile: "/sa/token", ServiceAccount: true}, false},
		{"no port", map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, "", nil, true},
		{"no host", map[string]string{"KUBERNETES_SERVICE_PORT": "443"}, "", nil, true},
		{"nothing", nil, "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			got, err := InCluster{Getenv: getenv, ServiceAccountDir: tt.dir}.Config()
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "KUBERNETES_SERVICE_HOST") {
				t.Errorf("error %q does not name the variables", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if tt.dir == "" {
				legacy, _ := InClusterConfig(getenv)
				if diff := cmp.Diff(got, legacy); diff != "" {
					t.Errorf("InClusterConfig differs from InCluster{}.Config() (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestInClusterCredentialErrors: the ServiceAccount's files are mounted by the
// kubelet before the container starts, so one missing is a configuration
// error (7), not a file still to be written; the error names the file and
// says what to check.
func TestInClusterCredentialErrors(t *testing.T) {
	pki := newClientPKI(t)
	env := map[string]string{"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "1"}
	tests := []struct {
		name     string
		files    map[string]string
		wantFile string
	}{
		{"no folder", nil, "ca.crt"},
		{"no token", map[string]string{"ca.crt": pki.certPEM}, "token"},
		{"empty token", map[string]string{"ca.crt": pki.certPEM, "token": ""}, "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "serviceaccount")
			for name, content := range tt.files {
				writeFile(t, dir, name, content)
			}
			cfg, err := InCluster{Getenv: func(k string) string { return env[k] }, ServiceAccountDir: dir}.Config()
			if err != nil {
				t.Fatal(err)
			}
			_, err = New(cfg, time.Second, time.Second)
			var ce *CredentialError
			if !errors.As(err, &ce) || ce.CNICode() != cnicode.InvalidNetworkConfig {
				t.Fatalf("error %v, want a credential error with code 7", err)
			}
			if want := filepath.Join(dir, tt.wantFile); ce.File != want || !strings.Contains(err.Error(), want) {
				t.Errorf("error %q names %s, want %s", err, ce.File, want)
			}
			if tt.files == nil && !strings.Contains(err.Error(), "automountServiceAccountToken") {
				t.Errorf("error %q does not say what to check", err)
			}
		})
	}
}
