package apiclient

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kubeconfigSeeds are kubeconfig files as kubeadm, upstream Multus's thin
// entrypoint and our installer write them, and broken ones.
var kubeconfigSeeds = []string{
	// kubeadm's admin.conf shape, with data fields.
	`apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUMvakNDQWVhZ0F3SUJBZ0lCQURBTkJna3Foa2lHOXcwQkFRc0ZBREFWTVJNd0VRWURWUVFERXdwcmRXSmwKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=
    server: https://192.168.122.10:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo=
`,
	// Our installer's file: the in-cluster service, a CA file and a token file.
	`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://10.96.0.1:443
    certificate-authority: /etc/cni/net.d/multus.d/ca.crt
users:
- name: multus
  user:
    tokenFile: multus.d/token
contexts:
- name: multus-context
  context:
    cluster: local
    user: multus
current-context: multus-context
`,
	`{"contexts":[{"name":"only","context":{"cluster":"c","user":"u"}}],"clusters":[{"name":"c","cluster":{"server":"https://[fd00::1]:6443","tls-server-name":"api"}}],"users":[{"name":"u","user":{"username":"a","password":"b"}}]}`,
	`contexts: [{name: x, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: "http://127.0.0.1:8080/prefix/"}}]
users: [{name: u, user: {exec: {command: aws}}}]`,
	"current-context: nope\ncontexts: []", "clusters: [unclosed", "", "null", "[]", "a: &a [*a, *a]",
}

// FuzzLoadKubeconfig reads whatever a kubeconfig file holds. Properties:
// LoadKubeconfig never panics; every refusal names the file; and an accepted
// file gives what the client can use: a server URL with scheme https or http
// and a host, which url.Parse (and so every request) accepts, no credentials
// for a plain-http server (they would go in cleartext), and file paths that are
// absolute (resolved against the kubeconfig's folder) or empty.
func FuzzLoadKubeconfig(f *testing.F) {
	for _, s := range kubeconfigSeeds {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "node-kubeconfig")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadKubeconfig(path)
		if err != nil {
			if cfg != nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("refused with %q and %+v; want an error naming %s alone", err, cfg, path)
			}
			return
		}
		u, err := url.Parse(cfg.Host)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			t.Fatalf("accepted server %q, which requests cannot use (%v)", cfg.Host, err)
		}
		if u.Scheme == "http" && (cfg.Token != "" || cfg.TokenFile != "" || cfg.Username != "" || cfg.Password != "" ||
			cfg.CertFile != "" || len(cfg.CertData) > 0) {
			t.Fatalf("credentials accepted for plain-http server %q", cfg.Host)
		}
		for name, p := range map[string]string{"CAFile": cfg.CAFile, "TokenFile": cfg.TokenFile, "CertFile": cfg.CertFile, "KeyFile": cfg.KeyFile} {
			if p != "" && !filepath.IsAbs(p) {
				t.Fatalf("%s %q is relative", name, p)
			}
		}
	})
}
