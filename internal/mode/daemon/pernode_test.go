package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polynet-cni/polynet/internal/config"
)

// TestPerNodeCertificateErrors: a daemon with perNodeCertificate that cannot
// bootstrap fails at start with the setting, the file or the variable named.
func TestPerNodeCertificateErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.kubeconfig")
	garbage := filepath.Join(dir, "garbage.kubeconfig")
	if err := os.WriteFile(garbage, []byte("{not yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		pn   config.PerNodeCertificate
		node string
		want []string
	}{
		"missing bootstrap kubeconfig": {config.PerNodeCertificate{BootstrapKubeconfig: missing}, "node-a",
			[]string{"perNodeCertificate.bootstrapKubeconfig", missing}},
		"bad bootstrap kubeconfig": {config.PerNodeCertificate{BootstrapKubeconfig: garbage}, "node-a",
			[]string{"perNodeCertificate.bootstrapKubeconfig", garbage}},
		"no node name": {config.PerNodeCertificate{}, "", []string{"MULTUS_NODE_NAME"}},
	} {
		t.Run(name, func(t *testing.T) {
			pn := tt.pn
			pn.Enabled, pn.CertDir, pn.CertDuration = true, filepath.Join(t.TempDir(), "certs"), config.Duration{Duration: config.DefaultCertDuration}
			conf := &config.DaemonConf{PerNodeCertificate: &pn, SocketDir: t.TempDir()}
			opts := Options{NodeName: tt.node, Log: slog.New(slog.DiscardHandler)}
			var err error
			if tt.node == "" {
				if os.Geteuid() != 0 {
					t.Skip("Run checks for root first")
				}
				err = Run(context.Background(), conf, opts)
			} else {
				_, _, err = clientConfig(context.Background(), conf, opts)
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("got %v, want an error naming %q", err, w)
				}
			}
		})
	}
}
