package nodecert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/certificate"
)

// ca is a certificate authority of one test.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &ca{cert: cert, key: key}
}

// client issues a client certificate of cn, PEM encoded with its key.
func (c *ca) client(t *testing.T, cn string, life time.Duration) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"system:multus"}},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(life), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// TestClientConfigPresentsTheStoredCertificate: with a valid certificate in
// certDir, Start needs no API server, Wait returns at once, and the client
// configuration presents that certificate, not the bootstrap's credentials,
// to a server that asks for one.
func TestClientConfigPresentsTheStoredCertificate(t *testing.T) {
	authority := newCA(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "no client certificate", http.StatusUnauthorized)
			return
		}
		if auth := r.Header.Get("Authorization"); auth != "" {
			http.Error(w, "bootstrap credentials sent: "+auth, http.StatusBadRequest)
			return
		}
		io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	pool := x509.NewCertPool()
	pool.AddCert(authority.cert)
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	store, err := certificate.NewFileStore(PairName, dir, dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := authority.client(t, "system:multus:node-a", time.Hour)
	if _, err := store.Update(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	serverCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	bootstrap := &rest.Config{Host: srv.URL, BearerToken: "bootstrap-token", TLSClientConfig: rest.TLSClientConfig{CAData: serverCA}}

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	id, err := Start(ctx, bootstrap, Options{NodeName: "node-a", CertDir: dir, Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(id.Stop)
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := id.Wait(wctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	cfg, err := id.ClientConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BearerToken != "" || cfg.Host != srv.URL {
		t.Errorf("config kept the bootstrap's token or lost its server: %+v", cfg)
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(srv.URL + "/version")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "system:multus:node-a" {
		t.Errorf("server saw %s %q, want the stored certificate's CN", resp.Status, body)
	}
	if _, err := os.Stat(filepath.Join(dir, PairName+"-current.pem")); err != nil {
		t.Errorf("the store's current file: %v", err)
	}
}

// TestStartNamesWhatIsWrong: errors name the setting and the file.
func TestStartNamesWhatIsWrong(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		opts Options
		want string
	}{
		"node name":         {Options{NodeName: "Node_A", CertDir: t.TempDir()}, "MULTUS_NODE_NAME"},
		"certDir not a dir": {Options{NodeName: "node-a", CertDir: filepath.Join(file, "certs")}, "perNodeCertificate.certDir"},
		"empty node name":   {Options{CertDir: t.TempDir()}, `node name ""`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Start(context.Background(), &rest.Config{Host: "https://127.0.0.1:1"}, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start: %v, want an error naming %q", err, tt.want)
			}
		})
	}
}
