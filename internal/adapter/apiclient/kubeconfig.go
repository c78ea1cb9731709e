package apiclient

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// kubeconfig is the part of a kubeconfig file the plugin uses, and the fields it
// refuses. Decoding it here instead of through clientcmd keeps clientcmd, and the
// auth plugins and API types it links, out of the binary the runtime starts for
// every pod; clientcmd_test.go checks that both read a table of files alike.
type kubeconfig struct {
	CurrentContext string          `json:"current-context"`
	Clusters       []namedCluster  `json:"clusters"`
	Users          []namedUser     `json:"users"`
	Contexts       []namedKubeCtxt `json:"contexts"`
}

type namedCluster struct {
	Name    string `json:"name"`
	Cluster struct {
		Server                   string `json:"server"`
		CertificateAuthority     string `json:"certificate-authority"`
		CertificateAuthorityData []byte `json:"certificate-authority-data"`
		InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify"`
		TLSServerName            string `json:"tls-server-name"`
		ProxyURL                 string `json:"proxy-url"`
	} `json:"cluster"`
}

type namedUser struct {
	Name string   `json:"name"`
	User userInfo `json:"user"`
}

type userInfo struct {
	Token                 string `json:"token"`
	TokenFile             string `json:"tokenFile"`
	ClientCertificate     string `json:"client-certificate"`
	ClientCertificateData []byte `json:"client-certificate-data"`
	ClientKey             string `json:"client-key"`
	ClientKeyData         []byte `json:"client-key-data"`
	Username              string `json:"username"`
	Password              string `json:"password"`
	Exec                  any    `json:"exec"`
	AuthProvider          any    `json:"auth-provider"`
	// Impersonation, which the plugin does not do: refused rather than ignored.
	As          string              `json:"as"`
	AsUID       string              `json:"as-uid"`
	AsGroups    []string            `json:"as-groups"`
	AsUserExtra map[string][]string `json:"as-user-extra"`
}

type namedKubeCtxt struct {
	Name    string `json:"name"`
	Context struct {
		Cluster string `json:"cluster"`
		User    string `json:"user"`
	} `json:"context"`
}

// LoadKubeconfig reads a kubeconfig file into a client configuration. It is read
// on every invocation, so a rotated token or certificate is used as soon as it is
// on disk. Relative file paths are relative to the kubeconfig's folder, as
// clientcmd resolves them. Every failure is a *CredentialError naming the file:
// one that is absent or empty is transient (its installer has not written it
// yet), anything else is a configuration error.
//
// Where clientcmd would quietly run without the credentials the file names, this
// refuses instead: a context naming a user the file does not define, a server
// without a scheme or on plain http with credentials, a client key without a
// certificate, impersonation, and exec or auth-provider credentials (a CNI plugin
// cannot run login helpers).
func LoadKubeconfig(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &CredentialError{What: "kubeconfig", File: path, Err: err}
	}
	data, err := readCredential("kubeconfig", path, false)
	if err != nil {
		return nil, err
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return nil, &CredentialError{What: "kubeconfig", File: path, Err: err}
	}
	cfg, err := kc.resolve(filepath.Dir(abs))
	if err != nil {
		return nil, &CredentialError{What: "kubeconfig", File: path, Err: err}
	}
	cfg.Kubeconfig = path
	return cfg, nil
}

// resolve follows the current context to its cluster and user. Relative paths
// are resolved against dir.
func (kc *kubeconfig) resolve(dir string) (*Config, error) {
	if err := kc.unique(); err != nil {
		return nil, err
	}
	if kc.CurrentContext == "" {
		return nil, errors.New("current-context is not set")
	}
	var kctx *namedKubeCtxt
	for i := range kc.Contexts {
		if kc.Contexts[i].Name == kc.CurrentContext {
			kctx = &kc.Contexts[i]
		}
	}
	if kctx == nil {
		return nil, fmt.Errorf("context %q not found", kc.CurrentContext)
	}
	var cluster *namedCluster
	for i := range kc.Clusters {
		if kc.Clusters[i].Name == kctx.Context.Cluster {
			cluster = &kc.Clusters[i]
		}
	}
	if cluster == nil {
		return nil, fmt.Errorf("context %q names cluster %q, which the file does not define", kctx.Name, kctx.Context.Cluster)
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	cfg, err := clusterConfig(cluster, abs)
	if err != nil {
		return nil, err
	}
	user := &userInfo{}
	if name := kctx.Context.User; name != "" {
		user = nil
		for i := range kc.Users {
			if kc.Users[i].Name == name {
				user = &kc.Users[i].User
			}
		}
		if user == nil {
			return nil, fmt.Errorf("context %q names user %q, which the file does not define", kctx.Name, name)
		}
	}
	if err := userConfig(cfg, kctx.Context.User, user, abs); err != nil {
		return nil, err
	}
	return cfg, nil
}

// unique refuses a name given twice in a list, as clientcmd does: which of the
// two the file means is anyone's guess.
func (kc *kubeconfig) unique() error {
	seen := map[string]bool{}
	check := func(list, name string) error {
		if seen[list+"/"+name] {
			return fmt.Errorf("%s has %q twice", list, name)
		}
		seen[list+"/"+name] = true
		return nil
	}
	for _, c := range kc.Clusters {
		if err := check("clusters", c.Name); err != nil {
			return err
		}
	}
	for _, u := range kc.Users {
		if err := check("users", u.Name); err != nil {
			return err
		}
	}
	for _, c := range kc.Contexts {
		if err := check("contexts", c.Name); err != nil {
			return err
		}
	}
	return nil
}

// clusterConfig checks a cluster's entry and makes the server's part of the
// configuration.
func clusterConfig(c *namedCluster, abs func(string) string) (*Config, error) {
	cl := c.Cluster
	if cl.Server == "" {
		return nil, fmt.Errorf("cluster %q has no server", c.Name)
	}
	host, err := serverURL(cl.Server)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", c.Name, err)
	}
	if cl.CertificateAuthority != "" && len(cl.CertificateAuthorityData) > 0 {
		return nil, fmt.Errorf("cluster %q has both certificate-authority and certificate-authority-data", c.Name)
	}
	if cl.InsecureSkipTLSVerify && (cl.CertificateAuthority != "" || len(cl.CertificateAuthorityData) > 0) {
		return nil, fmt.Errorf("cluster %q has both insecure-skip-tls-verify and a certificate authority", c.Name)
	}
	cfg := &Config{Host: host}
	if cl.ProxyURL != "" {
		u, err := url.Parse(cl.ProxyURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") || u.Host == "" {
			return nil, fmt.Errorf("cluster %q: proxy-url %q is not an http, https or socks5 URL", c.Name, cl.ProxyURL)
		}
		cfg.ProxyURL = cl.ProxyURL
	}
	if strings.HasPrefix(host, "https://") {
		// On plain http, clientcmd reads none of the TLS settings either.
		cfg.CAFile, cfg.CAData = abs(cl.CertificateAuthority), cl.CertificateAuthorityData
		cfg.Insecure, cfg.ServerName = cl.InsecureSkipTLSVerify, cl.TLSServerName
	}
	return cfg, nil
}

// userConfig checks a user's entry and adds its credentials to cfg.
func userConfig(cfg *Config, name string, u *userInfo, abs func(string) string) error {
	switch {
	case u.Exec != nil || u.AuthProvider != nil:
		return fmt.Errorf("user %q uses exec or auth-provider credentials, which a CNI plugin cannot run; use a token, token file or client certificate", name)
	case u.As != "" || u.AsUID != "" || len(u.AsGroups) > 0 || len(u.AsUserExtra) > 0:
		return fmt.Errorf("user %q impersonates (as, as-uid, as-groups, as-user-extra), which the plugin does not do", name)
	case (u.Token != "" || u.TokenFile != "") && (u.Username != "" || u.Password != ""):
		return fmt.Errorf("user %q has both a token and a username and password; only one is allowed", name)
	case u.ClientCertificate != "" && len(u.ClientCertificateData) > 0:
		return fmt.Errorf("user %q has both client-certificate and client-certificate-data", name)
	case u.ClientKey != "" && len(u.ClientKeyData) > 0:
		return fmt.Errorf("user %q has both client-key and client-key-data", name)
	}
	hasCert := u.ClientCertificate != "" || len(u.ClientCertificateData) > 0
	hasKey := u.ClientKey != "" || len(u.ClientKeyData) > 0
	if hasCert != hasKey {
		return fmt.Errorf("user %q has a client certificate or key without the other", name)
	}
	hasCreds := u.Token != "" || u.TokenFile != "" || u.Username != "" || u.Password != "" || hasCert
	if hasCreds && strings.HasPrefix(cfg.Host, "http://") {
		return fmt.Errorf("server %s is plain http: the credentials of user %q would be sent in cleartext", cfg.Host, name)
	}
	cfg.Token, cfg.TokenFile = u.Token, abs(u.TokenFile)
	cfg.CertFile, cfg.CertData = abs(u.ClientCertificate), u.ClientCertificateData
	cfg.KeyFile, cfg.KeyData = abs(u.ClientKey), u.ClientKeyData
	cfg.Username, cfg.Password = u.Username, u.Password
	return nil
}

// serverURL checks a cluster's server and returns it as requests use it:
// scheme, host and path, without a trailing slash.
func serverURL(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		if fixed, ok := unbracketIPv4(server); ok {
			u, err = url.Parse(fixed)
		}
	}
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("server %q is not an https:// (or http://) URL with a host", server)
	}
	return u.Scheme + "://" + u.Host + strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

// unbracketIPv4 takes the brackets off an IPv4 server address: upstream Multus's
// thin entrypoint writes "https://[10.96.0.1]:443" for every service address,
// which Go's URL parser refuses since IPv4 is not an IP-literal.
func unbracketIPv4(server string) (string, bool) {
	scheme, rest, ok := strings.Cut(server, "://")
	if !ok || !strings.HasPrefix(rest, "[") {
		return "", false
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return "", false
	}
	addr := rest[1:end]
	if ip := net.ParseIP(addr); ip == nil || ip.To4() == nil || strings.Contains(addr, ":") {
		return "", false
	}
	return scheme + "://" + addr + rest[end+1:], true
}
