package apiclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// writeFile writes content to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// kubeconfigYAML is a one-context kubeconfig whose cluster and user blocks are
// given as YAML lines (indented by the caller under "cluster:" and "user:").
func kubeconfigYAML(cluster, user string) string {
	return `apiVersion: v1
kind: Config
current-context: test
contexts:
- name: other
  context: {cluster: other, user: other}
- name: test
  context: {cluster: c1, user: u1}
clusters:
- name: other
  cluster: {server: "https://other.invalid"}
- name: c1
  cluster:
` + indent(cluster, "    ") + `
users:
- name: other
  user: {token: other-token}
- name: u1
  user:
` + indent(user, "    ") + "\n"
}

func indent(lines, prefix string) string {
	if lines == "" {
		return prefix + "{}"
	}
	parts := strings.Split(strings.TrimSpace(lines), "\n")
	for i := range parts {
		parts[i] = prefix + parts[i]
	}
	return strings.Join(parts, "\n")
}

// serverCAPEM is the PEM of the certificate a TLS httptest server presents.
func serverCAPEM(s *httptest.Server) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}))
}

// clientPKI is a CA and a client certificate it signed, in PEM.
type clientPKI struct {
	pool             *x509.CertPool
	certPEM, keyPEM  string
	clientCommonName string
}

func newClientPKI(t *testing.T) clientPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "system:node:node1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return clientPKI{
		pool:             pool,
		certPEM:          string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM:           string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})),
		clientCommonName: "system:node:node1",
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// whoami answers /readyz with 200 and records who asked: the bearer token or
// the client certificate's common name.
type whoami struct {
	auth, cn chan string
}

func (h whoami) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cn := ""
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		cn = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	h.auth <- r.Header.Get("Authorization")
	h.cn <- cn
	answer(w, http.StatusOK, "ok")
}

// TestKubeconfigCredentials: each way a kubeconfig gives the server's CA and the
// user's credentials reaches a TLS API server that checks them.
func TestKubeconfigCredentials(t *testing.T) {
	pki := newClientPKI(t)
	h := whoami{auth: make(chan string, 1), cn: make(chan string, 1)}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pki.pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	caPEM := serverCAPEM(srv)

	tests := []struct {
		name     string
		cluster  string
		user     string
		files    map[string]string
		wantAuth string
		wantCN   string
	}{
		{
			name:     "CA file relative to the kubeconfig, token",
			cluster:  "server: " + srv.URL + "\ncertificate-authority: pki/ca.crt",
			user:     "token: tok-123",
			files:    map[string]string{"pki/ca.crt": caPEM},
			wantAuth: "Bearer tok-123",
		},
		{
			name:     "CA data, token file (trimmed), absolute path",
			cluster:  "server: " + srv.URL + "\ncertificate-authority-data: " + b64(caPEM),
			user:     "tokenFile: {{dir}}/secrets/token",
			files:    map[string]string{"secrets/token": "tok-from-file\n"},
			wantAuth: "Bearer tok-from-file",
		},
		{
			name:    "client certificate and key files",
			cluster: "server: " + srv.URL + "\ncertificate-authority: ca.crt",
			user:    "client-certificate: client.crt\nclient-key: client.key",
			files:   map[string]string{"ca.crt": caPEM, "client.crt": pki.certPEM, "client.key": pki.keyPEM},
			wantCN:  pki.clientCommonName,
		},
		{
			name:    "client certificate and key data",
			cluster: "server: " + srv.URL + "\ncertificate-authority-data: " + b64(caPEM),
			user:    "client-certificate-data: " + b64(pki.certPEM) + "\nclient-key-data: " + b64(pki.keyPEM),
			wantCN:  pki.clientCommonName,
		},
		{
			name:     "basic auth",
			cluster:  "server: " + srv.URL + "\ncertificate-authority-data: " + b64(caPEM),
			user:     "username: admin\npassword: s3cret",
			wantAuth: "Basic " + b64("admin:s3cret"),
		},
		{
			name:     "tls-server-name lets a host the certificate does not name be verified",
			cluster:  "server: https://localhost:" + u.Port() + "\ncertificate-authority-data: " + b64(caPEM) + "\ntls-server-name: example.com",
			user:     "token: t",
			wantAuth: "Bearer t",
		},
		{
			name:     "insecure-skip-tls-verify when asked",
			cluster:  "server: " + srv.URL + "\ninsecure-skip-tls-verify: true",
			user:     "token: t",
			wantAuth: "Bearer t",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				writeFile(t, dir, name, content)
			}
			kc := strings.ReplaceAll(kubeconfigYAML(tt.cluster, tt.user), "{{dir}}", dir)
			path := writeFile(t, dir, "kubeconfig", kc)
			cfg, err := LoadKubeconfig(path)
			if err != nil {
				t.Fatal(err)
			}
			c, err := New(cfg, 5*time.Second, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Ready(context.Background()); err != nil {
				t.Fatalf("Ready: %v", err)
			}
			if got := <-h.auth; got != tt.wantAuth {
				t.Errorf("Authorization %q, want %q", got, tt.wantAuth)
			}
			if got := <-h.cn; got != tt.wantCN {
				t.Errorf("client certificate %q, want %q", got, tt.wantCN)
			}
		})
	}
}

// TestTLSVerifiedByDefault: without the server's CA, or with a host the
// certificate does not name, the connection is refused (insecure is off unless
// the kubeconfig asks), as a non-transient error.
func TestTLSVerifiedByDefault(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { answer(w, http.StatusOK, "ok") }))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	tests := []struct{ name, cluster string }{
		{"no CA", "server: " + srv.URL},
		{"host not in the certificate", "server: https://localhost:" + u.Port() + "\ncertificate-authority-data: " + b64(serverCAPEM(srv))},
		{"insecure false", "server: " + srv.URL + "\ninsecure-skip-tls-verify: false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, "kubeconfig", kubeconfigYAML(tt.cluster, "token: t"))
			cfg, err := LoadKubeconfig(path)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Insecure {
				t.Error("Insecure is set, want it off")
			}
			c, err := New(cfg, 5*time.Second, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Ready(context.Background())
			var apiErr *podnet.APIError
			if !errors.As(err, &apiErr) || apiErr.Transient || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("Ready: %v, want a non-transient certificate error", err)
			}
		})
	}
}

// TestLoadKubeconfigFields: the current context picks the cluster and the user;
// relative paths are resolved against the kubeconfig's folder.
func TestLoadKubeconfigFields(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "sub/kubeconfig", kubeconfigYAML(
		"server: https://10.0.0.1:6443/\ncertificate-authority: ca.crt\ntls-server-name: api.example",
		"tokenFile: ../token\nclient-certificate: /abs/c.crt\nclient-key: k.key\ntoken: inline"))
	got, err := LoadKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Host: "https://10.0.0.1:6443", CAFile: filepath.Join(dir, "sub", "ca.crt"), ServerName: "api.example",
		Token: "inline", TokenFile: filepath.Join(dir, "token"), CertFile: "/abs/c.crt", KeyFile: filepath.Join(dir, "sub", "k.key"),
		Kubeconfig: path,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

// TestLoadKubeconfigServer: the server is given to requests as scheme, host
// and path, without a trailing slash; the IPv4 address upstream Multus's thin
// entrypoint writes in brackets is taken without them.
func TestLoadKubeconfigServer(t *testing.T) {
	tests := []struct{ server, want string }{
		{"https://h:6443", "https://h:6443"},
		{"https://h:6443/", "https://h:6443"},
		{"https://h/prefix/", "https://h/prefix"},
		{"https://[fd00::1]:443", "https://[fd00::1]:443"},
		{"https://[10.96.0.1]:443", "https://10.96.0.1:443"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.server, func(t *testing.T) {
			kc := `current-context: x
contexts: [{name: x, context: {cluster: c}}]
clusters: [{name: c, cluster: {server: "` + tt.server + `"}}]`
			got, err := LoadKubeconfig(writeFile(t, t.TempDir(), "kc", kc))
			if err != nil {
				t.Fatal(err)
			}
			if got.Host != tt.want {
				t.Errorf("Host %q, want %q", got.Host, tt.want)
			}
		})
	}
}

// TestLoadKubeconfigErrors: every refusal names the file and what in it is
// wrong.
func TestLoadKubeconfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string // "" means no file at all
		want    []string
	}{
		{"missing file", "", []string{"kubeconfig", "no such file"}},
		{"not YAML", "clusters: [unclosed", []string{"kubeconfig"}},
		{"no current context", `contexts: [{name: only, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: "https://h:6443"}}]
users: [{name: u, user: {token: t}}]`, []string{"current-context is not set"}},
		{"no such context", "current-context: nope\ncontexts: []", []string{`context "nope" not found`}},
		{"no such user", kubeconfigWithContext("c1", "nobody", "server: https://h", "token: t"), []string{`context "test" names user "nobody"`}},
		{"server without scheme", kubeconfigYAML("server: 10.0.0.1:6443", "token: t"), []string{`server "10.0.0.1:6443"`, "https://"}},
		{"credentials over plain http", kubeconfigYAML("server: http://h:8080", "token: t"), []string{`user "u1"`, "cleartext"}},
		{"impersonation", kubeconfigYAML("server: https://h", "token: t\nas: admin"), []string{`user "u1"`, "impersonates"}},
		{"token and basic auth", kubeconfigYAML("server: https://h", "token: t\nusername: a\npassword: b"), []string{`user "u1"`, "only one"}},
		{"key without certificate", kubeconfigYAML("server: https://h", "client-key: k.key"), []string{`user "u1"`, "without the other"}},
		{"CA file and data", kubeconfigYAML("server: https://h\ncertificate-authority: ca.crt\ncertificate-authority-data: "+b64("x"), "token: t"),
			[]string{`cluster "c1"`, "both"}},
		{"insecure with a CA", kubeconfigYAML("server: https://h\ncertificate-authority: ca.crt\ninsecure-skip-tls-verify: true", "token: t"),
			[]string{`cluster "c1"`, "insecure-skip-tls-verify"}},
		{"bad proxy-url", kubeconfigYAML("server: https://h\nproxy-url: ftp://p", "token: t"), []string{"proxy-url"}},
		{"no such cluster", `current-context: x
contexts: [{name: x, context: {cluster: missing, user: u}}]`, []string{`cluster "missing"`}},
		{"cluster without server", `current-context: x
contexts: [{name: x, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {certificate-authority: ca}}]`, []string{`cluster "c"`, "no server"}},
		{"exec credentials", kubeconfigYAML("server: https://h", "exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}"),
			[]string{`user "u1"`, "exec"}},
		{"auth-provider credentials", kubeconfigYAML("server: https://h", "auth-provider: {name: oidc}"),
			[]string{`user "u1"`, "auth-provider"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "kubeconfig")
			if tt.content != "" {
				writeFile(t, dir, "kubeconfig", tt.content)
			}
			_, err := LoadKubeconfig(path)
			if err == nil {
				t.Fatal("LoadKubeconfig succeeded")
			}
			for _, part := range append([]string{path}, tt.want...) {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %q", err, part)
				}
			}
		})
	}
}

// TestNewCredentialErrors: credential files that cannot be read or used are
// refused by New, with the field and the file named.
func TestNewCredentialErrors(t *testing.T) {
	dir := t.TempDir()
	pki := newClientPKI(t)
	garbage := writeFile(t, dir, "garbage.pem", "not a certificate")
	cert := writeFile(t, dir, "client.crt", pki.certPEM)
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"CA file missing", Config{CAFile: missing}, []string{"certificate authority", missing}},
		{"CA file not PEM", Config{CAFile: garbage}, []string{"certificate authority", "no PEM certificate"}},
		{"CA data not PEM", Config{CAData: []byte("nope")}, []string{"certificate authority"}},
		{"client certificate missing", Config{CertFile: missing, KeyFile: cert}, []string{"client certificate", missing}},
		{"client key missing", Config{CertFile: cert, KeyFile: missing}, []string{"client key", missing}},
		{"certificate without key", Config{CertFile: cert}, []string{"client certificate"}},
		{"token file missing", Config{TokenFile: missing}, []string{"token file", missing}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Host = "https://127.0.0.1:1"
			_, err := New(&tt.cfg, time.Second, time.Second)
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, part := range tt.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %q", err, part)
				}
			}
		})
	}
}

// TestTokenFileReadAtNew: the token file is read when the client is built, so a
// token the kubelet rotated on disk is used by the next invocation.
func TestTokenFileReadAtNew(t *testing.T) {
	auth := make(chan string, 2)
	s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, r *http.Request) {
		auth <- r.Header.Get("Authorization")
		answer(w, http.StatusOK, "ok")
	})
	dir := t.TempDir()
	tokenPath := writeFile(t, dir, "token", "first")
	for _, tok := range []string{"first", "second"} {
		writeFile(t, dir, "token", tok)
		c, err := New(&Config{Host: s.URL, TokenFile: tokenPath, Token: "ignored"}, time.Second, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Ready(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := <-auth; got != "Bearer "+tok {
			t.Errorf("Authorization %q, want Bearer %s", got, tok)
		}
	}
}
