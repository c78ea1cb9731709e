package apiclient

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

// loadAndConnect is what the thin plugin does with a kubeconfig: load it, then
// build the client, which reads the files it names.
func loadAndConnect(path string) error {
	cfg, err := LoadKubeconfig(path)
	if err != nil {
		return err
	}
	_, err = New(cfg, time.Second, time.Second)
	return err
}

// TestCredentialErrorCodes: every credential the plugin cannot use fails with
// a CNI code the runtime can act on, never 999, and a message naming the file
// at fault. Absent or empty files are transient (11): an installer writes them,
// and an ADD can run before it has (a node booting, a DaemonSet being
// upgraded). Files that exist but cannot be used, and kubeconfigs that name what
// they do not define, are configuration errors (7). Secrets never appear in the
// message.
func TestCredentialErrorCodes(t *testing.T) {
	pki := newClientPKI(t)
	const secret = "s3cret-token-value"
	server := "server: https://127.0.0.1:1"
	tests := []struct {
		name     string
		files    map[string]string // relative to the test's folder; "kubeconfig" is the one loaded
		dirs     []string
		wantCode uint
		wantFile string // relative to the folder
		want     []string
	}{
		{name: "kubeconfig missing", wantCode: cnicode.TryAgainLater, wantFile: "kubeconfig", want: []string{"kubeconfig"}},
		{name: "kubeconfig empty", files: map[string]string{"kubeconfig": "\n"}, wantCode: cnicode.TryAgainLater, wantFile: "kubeconfig", want: []string{"empty"}},
		{name: "kubeconfig is a folder", dirs: []string{"kubeconfig"}, wantCode: cnicode.InvalidNetworkConfig, wantFile: "kubeconfig"},
		{name: "kubeconfig not YAML", files: map[string]string{"kubeconfig": "users: [{name: u, user: {token: " + secret + "}}]\nclusters: [unclosed"},
			wantCode: cnicode.InvalidNetworkConfig, wantFile: "kubeconfig"},
		{name: "no such context", files: map[string]string{"kubeconfig": "current-context: nope\ncontexts: []"},
			wantCode: cnicode.InvalidNetworkConfig, wantFile: "kubeconfig", want: []string{`context "nope"`}},
		{name: "context names a missing cluster", files: map[string]string{"kubeconfig": kubeconfigWithContext("c9", "u1", server, "token: "+secret)},
			wantCode: cnicode.InvalidNetworkConfig, wantFile: "kubeconfig", want: []string{`cluster "c9"`}},
		{name: "context names a missing user", files: map[string]string{"kubeconfig": kubeconfigWithContext("c1", "u9", server, "token: "+secret)},
			wantCode: cnicode.InvalidNetworkConfig, wantFile: "kubeconfig", want: []string{`user "u9"`}},
		{name: "exec credentials", files: map[string]string{"kubeconfig": kubeconfigYAML(server, "exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}")},
			wantCode: cnicode.InvalidNetworkConfig, wantFile: "kubeconfig", want: []string{`user "u1"`, "exec"}},
		{name: "token file missing", files: map[string]string{"kubeconfig": kubeconfigYAML(server, "tokenFile: token")},
			wantCode: cnicode.TryAgainLater, wantFile: "token", want: []string{"token file"}},
		{name: "token file empty", files: map[string]string{"kubeconfig": kubeconfigYAML(server, "tokenFile: token"), "token": " \n"},
			wantCode: cnicode.TryAgainLater, wantFile: "token", want: []string{"token file", "empty"}},
		{name: "token file is a folder", files: map[string]string{"kubeconfig": kubeconfigYAML(server, "tokenFile: token")}, dirs: []string{"token"},
			wantCode: cnicode.InvalidNetworkConfig, wantFile: "token", want: []string{"token file"}},
		{name: "CA file missing", files: map[string]string{"kubeconfig": kubeconfigYAML(server+"\ncertificate-authority: ca.crt", "token: "+secret)},
			wantCode: cnicode.TryAgainLater, wantFile: "ca.crt", want: []string{"certificate authority"}},
		{name: "CA file not PEM", files: map[string]string{"kubeconfig": kubeconfigYAML(server+"\ncertificate-authority: ca.crt", "token: "+secret), "ca.crt": "garbage"},
			wantCode: cnicode.InvalidNetworkConfig, wantFile: "ca.crt", want: []string{"certificate authority", "PEM"}},
		{name: "CA data not PEM", files: map[string]string{"kubeconfig": kubeconfigYAML(server+"\ncertificate-authority-data: "+b64("garbage"), "token: "+secret)},
			wantCode: cnicode.InvalidNetworkConfig, wantFile: "kubeconfig", want: []string{"certificate-authority-data"}},
		{name: "client key missing", files: map[string]string{"kubeconfig": kubeconfigYAML(server, "client-certificate: c.crt\nclient-key: c.key"), "c.crt": pki.certPEM},
			wantCode: cnicode.TryAgainLater, wantFile: "c.key", want: []string{"client key"}},
		{name: "client certificate and key do not match", files: map[string]string{
			"kubeconfig": kubeconfigYAML(server, "client-certificate: c.crt\nclient-key: c.key"), "c.crt": pki.certPEM, "c.key": newClientPKI(t).keyPEM},
			wantCode: cnicode.InvalidNetworkConfig, wantFile: "c.crt", want: []string{"client certificate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				writeFile(t, dir, name, content)
			}
			for _, d := range tt.dirs {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			err := loadAndConnect(filepath.Join(dir, "kubeconfig"))
			if err == nil {
				t.Fatal("no error")
			}
			var coder cnicode.Coder
			if !errors.As(err, &coder) || coder.CNICode() != tt.wantCode {
				code := cnicode.Internal
				if coder != nil {
					code = coder.CNICode()
				}
				t.Errorf("error %q has CNI code %d, want %d", err, code, tt.wantCode)
			}
			for _, part := range append([]string{filepath.Join(dir, tt.wantFile)}, tt.want...) {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %q", err, part)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q reveals the token", err)
			}
		})
	}
}

// kubeconfigWithContext is kubeconfigYAML with the current context naming
// cluster and user (c1 and u1 exist).
func kubeconfigWithContext(cluster, user, clusterBlock, userBlock string) string {
	return strings.Replace(kubeconfigYAML(clusterBlock, userBlock), "context: {cluster: c1, user: u1}",
		"context: {cluster: "+cluster+", user: "+user+"}", 1)
}
