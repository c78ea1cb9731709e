package apiclient

import (
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// kubeconfig is the part of a kubeconfig file the plugin uses. Decoding it here
// instead of through clientcmd keeps clientcmd, and the auth plugins and API types
// it links, out of the binary the runtime starts for every pod.
type kubeconfig struct {
	CurrentContext string `json:"current-context"`
	Clusters       []struct {
		Name    string `json:"name"`
		Cluster struct {
			Server                   string `json:"server"`
			CertificateAuthority     string `json:"certificate-authority"`
			CertificateAuthorityData []byte `json:"certificate-authority-data"`
			InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify"`
			TLSServerName            string `json:"tls-server-name"`
		} `json:"cluster"`
	} `json:"clusters"`
	Users []struct {
		Name string `json:"name"`
		User struct {
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
		} `json:"user"`
	} `json:"users"`
	Contexts []struct {
		Name    string `json:"name"`
		Context struct {
			Cluster string `json:"cluster"`
			User    string `json:"user"`
		} `json:"context"`
	} `json:"contexts"`
}

// LoadKubeconfig reads a kubeconfig file into a client configuration. It is read
// on every invocation, so a rotated token or certificate is used as soon as it is
// on disk. Relative file paths are relative to the kubeconfig's folder, as kubectl
// resolves them. Exec and auth-provider credentials are refused with an error
// naming them: a CNI plugin cannot run interactive or external login helpers.
func LoadKubeconfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	ctxName := kc.CurrentContext
	if ctxName == "" && len(kc.Contexts) == 1 {
		ctxName = kc.Contexts[0].Name
	}
	var clusterName, userName string
	found := false
	for _, c := range kc.Contexts {
		if c.Name == ctxName {
			clusterName, userName, found = c.Context.Cluster, c.Context.User, true
		}
	}
	if !found {
		return nil, fmt.Errorf("kubeconfig %s: context %q not found", path, ctxName)
	}
	dir := filepath.Dir(path)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	cfg := &Config{}
	found = false
	for _, c := range kc.Clusters {
		if c.Name == clusterName {
			found = true
			cfg.Host = c.Cluster.Server
			cfg.CAFile = abs(c.Cluster.CertificateAuthority)
			cfg.CAData = c.Cluster.CertificateAuthorityData
			cfg.Insecure = c.Cluster.InsecureSkipTLSVerify
			cfg.ServerName = c.Cluster.TLSServerName
		}
	}
	if !found || cfg.Host == "" {
		return nil, fmt.Errorf("kubeconfig %s: cluster %q not found or has no server", path, clusterName)
	}
	for _, u := range kc.Users {
		if u.Name != userName {
			continue
		}
		if u.User.Exec != nil || u.User.AuthProvider != nil {
			return nil, fmt.Errorf("kubeconfig %s: user %q uses exec or auth-provider credentials, which a CNI plugin cannot run; use a token, token file or client certificate", path, userName)
		}
		cfg.Token = u.User.Token
		cfg.TokenFile = abs(u.User.TokenFile)
		cfg.CertFile = abs(u.User.ClientCertificate)
		cfg.CertData = u.User.ClientCertificateData
		cfg.KeyFile = abs(u.User.ClientKey)
		cfg.KeyData = u.User.ClientKeyData
		cfg.Username, cfg.Password = u.User.Username, u.User.Password
	}
	return cfg, nil
}
