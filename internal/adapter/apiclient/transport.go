package apiclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
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
	// ProxyURL is the cluster's proxy-url; empty means the environment's proxy
	// settings, as client-go uses.
	ProxyURL string
	// Credentials besides a client certificate. A token file that can be read
	// wins over Token, as in client-go.
	Token              string
	TokenFile          string
	Username, Password string

	// Kubeconfig is the file the configuration was read from, named in errors
	// about the data it holds inline.
	Kubeconfig string
	// ServiceAccount marks CAFile and TokenFile as a pod's ServiceAccount volume,
	// which the kubelet mounts before the container starts and replaces
	// atomically: one of them missing is a configuration error, not a file still
	// to be written.
	ServiceAccount bool
}

// serviceAccountDir is where the kubelet mounts a pod's ServiceAccount token and
// the cluster's CA.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// InCluster finds the API server as a pod does: the service's address from the
// environment and the projected ServiceAccount token, which the kubelet rotates
// on disk and which is read on every invocation.
type InCluster struct {
	Getenv func(string) string
	// ServiceAccountDir holds token and ca.crt; empty is where the kubelet
	// mounts them.
	ServiceAccountDir string
}

// Config is the configuration of the pod's ServiceAccount. It reads no file:
// New does.
func (ic InCluster) Config() (*Config, error) {
	host, port := ic.Getenv("KUBERNETES_SERVICE_HOST"), ic.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
	}
	dir := ic.ServiceAccountDir
	if dir == "" {
		dir = serviceAccountDir
	}
	return &Config{
		Host:   "https://" + net.JoinHostPort(host, port),
		CAFile: filepath.Join(dir, "ca.crt"), TokenFile: filepath.Join(dir, "token"), ServiceAccount: true,
	}, nil
}

// InClusterConfig is the configuration of a pod running in the cluster, with its
// ServiceAccount where the kubelet mounts it.
func InClusterConfig(getenv func(string) string) (*Config, error) {
	return InCluster{Getenv: getenv}.Config()
}

// httpClient builds the client: TLS from the files and data, reading every file
// now, so rotated credentials take effect at the next invocation. Its errors are
// *CredentialError.
func (c *Config) httpClient() (*http.Client, string, error) {
	tlsConf, err := c.tlsConfig()
	if err != nil {
		return nil, "", err
	}
	auth, err := c.authorization()
	if err != nil {
		return nil, "", err
	}
	proxy := http.ProxyFromEnvironment
	if c.ProxyURL != "" {
		u, err := url.Parse(c.ProxyURL)
		if err != nil {
			return nil, "", c.invalid("proxy", "proxy-url", "", err)
		}
		proxy = http.ProxyURL(u)
	}
	transport := &http.Transport{
		Proxy:               proxy,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
	}
	return &http.Client{Transport: transport}, auth, nil
}

func (c *Config) tlsConfig() (*tls.Config, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.Insecure} //nolint:gosec // only when the kubeconfig asks for it
	ca, err := c.material("certificate authority", c.CAData, c.CAFile)
	if err != nil {
		return nil, err
	}
	if len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, c.invalid("certificate authority", "certificate-authority-data", c.CAFile, errors.New("no PEM certificate found"))
		}
		tlsConf.RootCAs = pool
	}
	cert, err := c.material("client certificate", c.CertData, c.CertFile)
	if err != nil {
		return nil, err
	}
	key, err := c.material("client key", c.KeyData, c.KeyFile)
	if err != nil {
		return nil, err
	}
	if len(cert) > 0 || len(key) > 0 {
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			if c.KeyFile != "" {
				err = fmt.Errorf("with client key %s: %w", c.KeyFile, err)
			}
			return nil, c.invalid("client certificate", "client-certificate-data", c.CertFile, err)
		}
		tlsConf.Certificates = []tls.Certificate{pair}
	}
	return tlsConf, nil
}

// authorization is the Authorization header: the token file's token, else the
// inline token (client-go falls back to it too while the file cannot be read),
// else basic auth.
func (c *Config) authorization() (string, error) {
	token := c.Token
	if c.TokenFile != "" {
		data, err := readCredential("token file", c.TokenFile, c.ServiceAccount)
		switch {
		case err == nil:
			token = strings.TrimSpace(string(data))
		case c.Token == "":
			return "", err
		}
	}
	switch {
	case token != "":
		return "Bearer " + token, nil
	case c.Username != "":
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(c.Username, c.Password)
		return req.Header.Get("Authorization"), nil
	}
	return "", nil
}

// material returns a credential's inline data, or reads its file.
func (c *Config) material(what string, data []byte, file string) ([]byte, error) {
	if len(data) > 0 || file == "" {
		return data, nil
	}
	return readCredential(what, file, c.ServiceAccount)
}

// invalid is a configuration error about a credential's content, naming its
// file, or the kubeconfig that holds it inline as field.
func (c *Config) invalid(what, field, file string, err error) error {
	if file != "" {
		return &CredentialError{What: what, File: file, Err: err}
	}
	src := c.Kubeconfig
	if src == "" {
		src = "(given inline)"
	}
	return &CredentialError{What: what + " (" + field + ") in kubeconfig", File: src, Err: err}
}
