package install

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/polynet-cni/polynet/internal/adapter/apiclient"
	"github.com/polynet-cni/polynet/internal/atomicfile"
	"github.com/polynet-cni/polynet/internal/dirwatch"
)

// DefaultServiceAccountDir is where a pod finds its projected ServiceAccount
// token and the cluster's CA.
const DefaultServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

const (
	kubeconfigMode = 0o600
	refreshPoll    = time.Second
	refreshQuiet   = 100 * time.Millisecond
)

// Names inside the generated kubeconfig, upstream's, so that tools reading it
// find what they used to.
const (
	clusterName = "local"
	userName    = "multus"
	contextName = "multus-context"
)

// InClusterServer is the API server's URL as a pod sees it, the thin plugin's
// in-cluster address (KUBERNETES_SERVICE_HOST and _PORT), with the scheme
// KUBERNETES_SERVICE_PROTOCOL names when set, as upstream's installer honours.
func InClusterServer(getenv func(string) string) (string, error) {
	c, err := apiclient.InClusterConfig(getenv)
	if err != nil {
		return "", err
	}
	if proto := getenv("KUBERNETES_SERVICE_PROTOCOL"); proto != "" {
		return proto + strings.TrimPrefix(c.Host, "https"), nil
	}
	return c.Host, nil
}

// Kubeconfig keeps a kubeconfig file for the thin plugin on the host in step
// with the pod's projected ServiceAccount token: the kubelet rotates that token
// (hourly under some hardening profiles), and a copy that is never refreshed
// expires and fails every pod (Multus #852, rke2#9313). The plugin reads the
// file on every call, so a refreshed file is used at once.
type Kubeconfig struct {
	// Path is the file written (inside the installer's container).
	Path string
	// ServiceAccountDir holds token and ca.crt.
	ServiceAccountDir string
	// Server is the API server's URL.
	Server string
	// Insecure skips the server certificate's verification instead of
	// embedding the CA (upstream's hidden --skip-tls-verify).
	Insecure bool
	Log      *slog.Logger
}

// Sync makes the file match the current token and CA, writing it atomically
// (mode 0600: it holds a credential) only when it differs, and reports whether
// it wrote.
func (k *Kubeconfig) Sync() (bool, error) {
	want, token, err := k.render()
	if err != nil {
		return false, err
	}
	have, err := os.ReadFile(k.Path)
	if err == nil && bytes.Equal(have, want) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(k.Path), 0o755); err != nil {
		return false, fmt.Errorf("kubeconfig folder: %w", err)
	}
	if err := atomicfile.Write(k.Path, want, kubeconfigMode); err != nil {
		return false, fmt.Errorf("writing the kubeconfig %s: %w", k.Path, err)
	}
	k.log().Info("wrote the plugin's kubeconfig", "file", k.Path, "server", k.Server, "tokenExpires", tokenExpiry(token))
	return true, nil
}

// Run keeps the file in step until ctx ends: a change in the ServiceAccount
// folder (the kubelet swaps the projected files by renaming a symlink) or in
// the kubeconfig's folder wakes it, and it looks at least every second anyway.
// A failure is logged once and retried; the last good file stays.
func (k *Kubeconfig) Run(ctx context.Context) {
	w := dirwatch.New([]string{k.ServiceAccountDir, filepath.Dir(k.Path)}, refreshPoll, refreshQuiet, k.log())
	defer w.Close()
	var lastErr string
	for w.Wait(ctx) {
		_, err := k.Sync()
		switch {
		case err != nil && err.Error() != lastErr:
			k.log().Error("cannot refresh the plugin's kubeconfig; keeping the last one", "file", k.Path, "error", err)
			lastErr = err.Error()
		case err == nil && lastErr != "":
			k.log().Info("the plugin's kubeconfig can be refreshed again", "file", k.Path)
			lastErr = ""
		}
	}
}

// Remove deletes the file (thin_entrypoint's --cleanup-config-on-exit): a
// credential left on the host after uninstalling serves nobody.
func (k *Kubeconfig) Remove() error {
	if err := os.Remove(k.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Fresh reports whether the file on disk carries the current token and CA: the
// thin installer's probe.
func (k *Kubeconfig) Fresh() error {
	want, _, err := k.render()
	if err != nil {
		return err
	}
	have, err := os.ReadFile(k.Path)
	if err != nil {
		return fmt.Errorf("reading the kubeconfig: %w", err)
	}
	if !bytes.Equal(have, want) {
		return fmt.Errorf("the kubeconfig %s does not carry the current ServiceAccount token", k.Path)
	}
	return nil
}

// kubeconfigFile is the part of the kubeconfig format written here.
type kubeconfigFile struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []namedCluster `json:"clusters"`
	Users          []namedUser    `json:"users"`
	Contexts       []namedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
}

type namedCluster struct {
	Name    string `json:"name"`
	Cluster struct {
		Server                   string `json:"server"`
		CertificateAuthorityData []byte `json:"certificate-authority-data,omitempty"`
		InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify,omitempty"`
	} `json:"cluster"`
}

type namedUser struct {
	Name string `json:"name"`
	User struct {
		Token string `json:"token"`
	} `json:"user"`
}

type namedContext struct {
	Name    string `json:"name"`
	Context struct {
		Cluster string `json:"cluster"`
		User    string `json:"user"`
	} `json:"context"`
}

// render is the wanted file, and the token it carries.
func (k *Kubeconfig) render() ([]byte, string, error) {
	tokenBytes, err := os.ReadFile(filepath.Join(k.ServiceAccountDir, "token"))
	if err != nil {
		return nil, "", fmt.Errorf("ServiceAccount token: %w", err)
	}
	token := strings.TrimSpace(string(tokenBytes))
	if token == "" {
		return nil, "", fmt.Errorf("ServiceAccount token %s is empty", filepath.Join(k.ServiceAccountDir, "token"))
	}
	c := namedCluster{Name: clusterName}
	c.Cluster.Server = k.Server
	if k.Insecure {
		c.Cluster.InsecureSkipTLSVerify = true
	} else if c.Cluster.CertificateAuthorityData, err = os.ReadFile(filepath.Join(k.ServiceAccountDir, "ca.crt")); err != nil {
		return nil, "", fmt.Errorf("cluster CA: %w", err)
	}
	u := namedUser{Name: userName}
	u.User.Token = token
	x := namedContext{Name: contextName}
	x.Context.Cluster, x.Context.User = clusterName, userName
	out, err := yaml.Marshal(kubeconfigFile{
		APIVersion: "v1", Kind: "Config", Clusters: []namedCluster{c}, Users: []namedUser{u},
		Contexts: []namedContext{x}, CurrentContext: contextName,
	})
	if err != nil {
		return nil, "", err
	}
	return append([]byte("# Written by thin_entrypoint from its ServiceAccount token; rewritten whenever the token rotates.\n"), out...), token, nil
}

func (k *Kubeconfig) log() *slog.Logger {
	if k.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return k.Log
}

// tokenExpiry reads a JWT's expiry for the log, without verifying it (the API
// server does); "unknown" when it is not a JWT with one.
func tokenExpiry(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "unknown"
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "unknown"
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return "unknown"
	}
	return time.Unix(claims.Exp, 0).UTC().Format(time.RFC3339)
}
