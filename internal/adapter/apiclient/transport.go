package apiclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Config is how to reach and authenticate to one API server: what a kubeconfig or
// the in-cluster ServiceAccount gives. The thin plugin builds its HTTP client from
// it with the standard library alone: client-go's rest package would add about 300
// packages and their initialisation to every pod's ADD and DEL (see the start-up
// benchmark in test/bench).
type Config struct {
	Host string
	// TLS: the server's CA, an optional client certificate, and overrides.
	CAData, CertData, KeyData []byte
	CAFile, CertFile, KeyFile string
	Insecure                  bool
	ServerName                string
	// Credentials besides a client certificate.
	Token              string
	TokenFile          string
	Username, Password string
}

// In-cluster paths of a pod's ServiceAccount credentials.
const (
	saTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	saCAFile    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// InClusterConfig is the configuration of a pod running in the cluster: the
// service's address from the environment and the projected ServiceAccount token,
// which the kubelet rotates on disk and which is read on every invocation.
func InClusterConfig(getenv func(string) string) (*Config, error) {
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
	}
	return &Config{Host: "https://" + net.JoinHostPort(host, port), CAFile: saCAFile, TokenFile: saTokenFile}, nil
}

// httpClient builds the client: TLS from the files and data, reading every file
// now, so rotated credentials take effect at the next invocation.
func (c *Config) httpClient() (*http.Client, string, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.Insecure} //nolint:gosec // only when the kubeconfig asks for it
	ca, err := dataOrFile(c.CAData, c.CAFile)
	if err != nil {
		return nil, "", fmt.Errorf("certificate authority: %w", err)
	}
	if len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, "", errors.New("certificate authority: no PEM certificate found")
		}
		tlsConf.RootCAs = pool
	}
	cert, err := dataOrFile(c.CertData, c.CertFile)
	if err != nil {
		return nil, "", fmt.Errorf("client certificate: %w", err)
	}
	key, err := dataOrFile(c.KeyData, c.KeyFile)
	if err != nil {
		return nil, "", fmt.Errorf("client key: %w", err)
	}
	if len(cert) > 0 || len(key) > 0 {
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, "", fmt.Errorf("client certificate: %w", err)
		}
		tlsConf.Certificates = []tls.Certificate{pair}
	}
	token := c.Token
	if c.TokenFile != "" {
		data, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return nil, "", fmt.Errorf("token file: %w", err)
		}
		token = strings.TrimSpace(string(data))
	}
	auth := ""
	switch {
	case token != "":
		auth = "Bearer " + token
	case c.Username != "":
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(c.Username, c.Password)
		auth = req.Header.Get("Authorization")
	}
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
	}
	return &http.Client{Transport: transport}, auth, nil
}

func dataOrFile(data []byte, file string) ([]byte, error) {
	if len(data) > 0 || file == "" {
		return data, nil
	}
	return os.ReadFile(file)
}
