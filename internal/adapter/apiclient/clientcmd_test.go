package apiclient

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// clientView is what a loader made of a kubeconfig, in terms both loaders
// share: the server URL requests go to, TLS, and credentials, the token as
// the one a request carries.
type clientView struct {
	Host                                                 string
	CAFile, CAData, CertFile, CertData, KeyFile, KeyData string
	Insecure                                             bool
	ServerName                                           string
	Token, TokenFile, Username, Password, Proxy          string
}

// effectiveToken is what a request carries: the token file's, trimmed, when
// it can be read and is not empty (both read it at each use), else the inline
// token.
func effectiveToken(token, file string) string {
	if file != "" {
		if data, err := os.ReadFile(file); err == nil && strings.TrimSpace(string(data)) != "" {
			return strings.TrimSpace(string(data))
		}
	}
	return token
}

// ours loads path as the thin plugin does: LoadKubeconfig, then New, which
// reads the files named.
func ours(path string) (clientView, error) {
	cfg, err := LoadKubeconfig(path)
	if err != nil {
		return clientView{}, err
	}
	if _, err := New(cfg, time.Second, time.Second); err != nil {
		return clientView{}, err
	}
	return clientView{
		Host: cfg.Host, CAFile: cfg.CAFile, CAData: string(cfg.CAData), CertFile: cfg.CertFile, CertData: string(cfg.CertData),
		KeyFile: cfg.KeyFile, KeyData: string(cfg.KeyData), Insecure: cfg.Insecure, ServerName: cfg.ServerName,
		Token: effectiveToken(cfg.Token, cfg.TokenFile), TokenFile: cfg.TokenFile, Username: cfg.Username, Password: cfg.Password,
		Proxy: cfg.ProxyURL,
	}, nil
}

// theirs loads path as upstream Multus's thin plugin did: clientcmd with the
// file as its only source and no overrides, then client-go's HTTP client,
// which reads and checks the TLS files and the token file.
func theirs(path string) (clientView, error) {
	raw, err := (&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}).Load()
	if err != nil {
		return clientView{}, err
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, "", &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return clientView{}, err
	}
	if _, err := rest.HTTPClientFor(cfg); err != nil {
		return clientView{}, err
	}
	u, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return clientView{}, err
	}
	proxy := ""
	if cfg.Proxy != nil {
		req, _ := http.NewRequest(http.MethodGet, u.String(), nil)
		if p, err := cfg.Proxy(req); err == nil && p != nil {
			proxy = p.String()
		}
	}
	return clientView{
		Host:   u.Scheme + "://" + u.Host + strings.TrimSuffix(u.EscapedPath(), "/"),
		CAFile: cfg.CAFile, CAData: string(cfg.CAData), CertFile: cfg.CertFile, CertData: string(cfg.CertData),
		KeyFile: cfg.KeyFile, KeyData: string(cfg.KeyData), Insecure: cfg.Insecure, ServerName: cfg.ServerName,
		Token: effectiveToken(strings.TrimSpace(cfg.BearerToken), cfg.BearerTokenFile), TokenFile: cfg.BearerTokenFile,
		Username: cfg.Username, Password: cfg.Password, Proxy: proxy,
	}, nil
}

// TestAgreesWithClientcmd loads a table of kubeconfigs with our loader and with
// client-go's clientcmd (linked by this test only), and checks that both make
// the same server URL, TLS settings and credentials of each, and refuse the
// same files. Where we refuse what clientcmd accepts, the row says why: in each
// case clientcmd would run without credentials the file names (anonymous,
// which fails later as 401 or 403 with nothing pointing at the kubeconfig) or
// with credentials it cannot use.
func TestAgreesWithClientcmd(t *testing.T) {
	pki := newClientPKI(t)
	other := newClientPKI(t)
	files := map[string]string{
		"pki/ca.crt": pki.certPEM, "pki/client.crt": pki.certPEM, "pki/client.key": pki.keyPEM,
		"other.key": other.keyPEM, "token": "file-token\n", "empty-token": "", "garbage.pem": "not PEM",
	}
	ca := "certificate-authority-data: " + b64(pki.certPEM)
	tests := []struct {
		name    string
		cluster string
		user    string
		raw     string // the whole file instead, when set
		// stricter says why we refuse what clientcmd accepts; looser why we
		// accept what it refuses.
		stricter, looser string
	}{
		{name: "token, CA data", cluster: "server: https://h:6443\n" + ca, user: "token: t1"},
		{name: "relative CA file and token file", cluster: "server: https://h:6443\ncertificate-authority: pki/ca.crt", user: "tokenFile: token"},
		{name: "relative client certificate and key", cluster: "server: https://h:6443\ncertificate-authority: pki/ca.crt",
			user: "client-certificate: pki/client.crt\nclient-key: pki/client.key"},
		{name: "client certificate and key data", cluster: "server: https://h:6443\n" + ca,
			user: "client-certificate-data: " + b64(pki.certPEM) + "\nclient-key-data: " + b64(pki.keyPEM)},
		{name: "absolute token file", cluster: "server: https://h\n" + ca, user: "tokenFile: {{dir}}/token"},
		{name: "token and token file: the file wins", cluster: "server: https://h\n" + ca, user: "token: inline\ntokenFile: token"},
		{name: "token and a missing token file: the token", cluster: "server: https://h\n" + ca, user: "token: inline\ntokenFile: nope"},
		{name: "basic auth", cluster: "server: https://h\n" + ca, user: "username: admin\npassword: pw"},
		{name: "insecure", cluster: "server: https://h\ninsecure-skip-tls-verify: true", user: "token: t"},
		{name: "tls-server-name", cluster: "server: https://10.0.0.1:6443\n" + ca + "\ntls-server-name: api.example", user: "token: t"},
		{name: "path prefix, trailing slash", cluster: "server: https://h:6443/k8s/\n" + ca, user: "token: t"},
		{name: "IPv6", cluster: "server: https://[fd00::1]:443\n" + ca, user: "token: t"},
		{name: "http proxy", cluster: "server: https://h\n" + ca + "\nproxy-url: http://proxy:3128", user: "token: t"},
		{name: "socks5 proxy", cluster: "server: https://h\n" + ca + "\nproxy-url: socks5://proxy:1080", user: "token: t"},
		{name: "http server, no user", raw: `current-context: x
contexts: [{name: x, context: {cluster: c}}]
clusters: [{name: c, cluster: {server: "http://127.0.0.1:8080"}}]`},
		{name: "context without a user: anonymous", raw: `current-context: x
contexts: [{name: x, context: {cluster: c}}]
clusters: [{name: c, cluster: {server: "https://h", certificate-authority: pki/ca.crt}}]`},
		{name: "JSON", raw: `{"current-context":"x","contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],
"clusters":[{"name":"c","cluster":{"server":"https://h","insecure-skip-tls-verify":true}}],
"users":[{"name":"u","user":{"token":"a"}}],"preferences":{},"extensions":[]}`},

		{name: "token file missing", cluster: "server: https://h\n" + ca, user: "tokenFile: nope"},
		{name: "CA file missing", cluster: "server: https://h\ncertificate-authority: nope.crt", user: "token: t"},
		{name: "CA not PEM", cluster: "server: https://h\ncertificate-authority: garbage.pem", user: "token: t"},
		{name: "CA data not base64", cluster: "server: https://h\ncertificate-authority-data: '!!!'", user: "token: t"},
		{name: "certificate and key data do not match", cluster: "server: https://h\n" + ca,
			user: "client-certificate-data: " + b64(pki.certPEM) + "\nclient-key-data: " + b64(other.keyPEM)},
		{name: "cluster named twice", raw: `current-context: x
contexts: [{name: x, context: {cluster: c}}]
clusters: [{name: c, cluster: {server: "https://first"}}, {name: c, cluster: {server: "https://second"}}]`},
		{name: "user named twice", raw: `current-context: x
contexts: [{name: x, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: "https://h"}}]
users: [{name: u, user: {token: a}}, {name: u, user: {token: b}}]`},
		{name: "context named twice", raw: `current-context: x
contexts: [{name: x, context: {cluster: c}}, {name: x, context: {cluster: c}}]
clusters: [{name: c, cluster: {server: "https://h"}}]`},
		{name: "certificate without key", cluster: "server: https://h\n" + ca, user: "client-certificate: pki/client.crt"},
		{name: "CA file and data", cluster: "server: https://h\ncertificate-authority: pki/ca.crt\n" + ca, user: "token: t"},
		{name: "insecure with a CA", cluster: "server: https://h\ninsecure-skip-tls-verify: true\n" + ca, user: "token: t"},
		{name: "token and basic auth", cluster: "server: https://h\n" + ca, user: "token: t\nusername: a\npassword: b"},
		{name: "token file and basic auth", cluster: "server: https://h\n" + ca, user: "tokenFile: token\nusername: a\npassword: b"},
		{name: "bad proxy-url", cluster: "server: https://h\n" + ca + "\nproxy-url: ftp://proxy", user: "token: t"},
		{name: "no server", cluster: ca, user: "token: t"},
		{name: "auth-provider", cluster: "server: https://h\n" + ca, user: "auth-provider: {name: oidc}"},
		{name: "no current-context", raw: `contexts: [{name: only, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: "https://h"}}]
users: [{name: u, user: {token: t}}]`},
		{name: "current-context missing", raw: "current-context: nope\ncontexts: []"},
		{name: "context names a missing cluster", raw: `current-context: x
contexts: [{name: x, context: {cluster: gone, user: u}}]
users: [{name: u, user: {token: t}}]`},
		{name: "empty file", raw: "\n"},
		{name: "not YAML", raw: "clusters: [unclosed"},

		{name: "context names a missing user", raw: `current-context: x
contexts: [{name: x, context: {cluster: c, user: gone}}]
clusters: [{name: c, cluster: {server: "https://h"}}]`,
			stricter: "clientcmd runs anonymous; the user meant to authenticate"},
		{name: "server without a scheme", cluster: "server: 10.0.0.1:6443\n" + ca, user: "token: t",
			stricter: "clientcmd takes it as http and then reads neither the CA nor the token"},
		{name: "credentials on plain http", cluster: "server: http://10.0.0.1:8080", user: "token: t",
			stricter: "clientcmd drops the credentials on http, running anonymous"},
		{name: "client key without certificate", cluster: "server: https://h\n" + ca, user: "client-key: pki/client.key",
			stricter: "clientcmd ignores a key without its certificate, running anonymous"},
		{name: "impersonation", cluster: "server: https://h\n" + ca, user: "token: t\nas: admin",
			stricter: "the plugin does not impersonate: it would act as the token's user instead of the one named"},
		{name: "certificate and key files do not match", cluster: "server: https://h\n" + ca, user: "client-certificate: pki/client.crt\nclient-key: other.key",
			stricter: "client-go logs the failure to load the pair and connects without a client certificate"},
		{name: "exec credentials", cluster: "server: https://h\n" + ca,
			user:     "exec: {command: aws, apiVersion: client.authentication.k8s.io/v1, interactiveMode: Never}",
			stricter: "a CNI plugin, started by the runtime for every pod, cannot run login helpers"},
		{name: "IPv4 in brackets, as upstream Multus's entrypoint writes it", cluster: "server: https://[10.96.0.1]:443\n" + ca, user: "token: t",
			looser: "Go's URL parser refuses an IPv4 address in brackets, and upstream's installer writes every service address so"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range files {
				writeFile(t, dir, name, content)
			}
			content := tt.raw
			if content == "" {
				content = kubeconfigYAML(tt.cluster, tt.user)
			}
			path := writeFile(t, dir, "kubeconfig", strings.ReplaceAll(content, "{{dir}}", dir))
			got, ourErr := ours(path)
			want, theirErr := theirs(path)
			switch {
			case tt.stricter != "":
				if ourErr == nil || theirErr != nil {
					t.Fatalf("want ours to refuse (%s) and clientcmd to accept: ours %v, clientcmd %v", tt.stricter, ourErr, theirErr)
				}
			case tt.looser != "":
				if ourErr != nil || theirErr == nil {
					t.Fatalf("want ours to accept (%s) and clientcmd to refuse: ours %v, clientcmd %v", tt.looser, ourErr, theirErr)
				}
			case (ourErr != nil) != (theirErr != nil):
				t.Fatalf("ours: %v; clientcmd: %v", ourErr, theirErr)
			case ourErr == nil:
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-clientcmd +ours):\n%s", diff)
				}
			}
		})
	}
}
