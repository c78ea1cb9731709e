package config

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Defaults of the daemon configuration: upstream's, and ours for what upstream
// leaves unbounded.
const (
	DefaultDaemonConfig    = "/etc/cni/net.d/multus.d/daemon-config.json"
	DefaultCNIConfigDir    = "/etc/cni/net.d"
	DefaultMaxInFlight     = 32
	DefaultMaxRequestBytes = 1 << 20
	DefaultRequestTimeout  = 3 * time.Minute
	DefaultShutdownTimeout = 10 * time.Second
	DefaultCacheSync       = time.Minute
	// ConnectionsPerInFlight makes connectionLimit's default: this many socket
	// connections per request maxInFlight allows, so that requests past the
	// bound get their "try again later" at once while the connections beyond
	// wait in the kernel's backlog instead of costing the daemon memory.
	ConnectionsPerInFlight = 2
	// AutoConfig makes the daemon generate the shim's configuration.
	AutoConfig = "auto"
)

// DaemonConf is daemon-config.json: the node daemon's own settings, how it
// generates the shim's CNI configuration, and plugin-configuration keys it lays
// over every request's configuration (Overlay).
type DaemonConf struct {
	CNIVersion string `json:"cniVersion"`
	// SocketDir holds multus.sock.
	SocketDir string `json:"socketDir"`
	// ChrootDir, when set, is the root delegates run in (a host's / mounted
	// into the daemon's container).
	ChrootDir   string `json:"chrootDir"`
	LogFile     string `json:"logFile"`
	LogLevel    string `json:"logLevel"`
	LogToStderr bool   `json:"logToStderr"`
	// LogOptions rotates LogFile, with the plugin configuration's defaults.
	LogOptions      LogOptions `json:"logOptions"`
	MetricsPort     *int       `json:"metricsPort"`
	EnablePprof     bool       `json:"enablePprof"`
	ConnectionLimit *int       `json:"connectionLimit"`
	// PerNodeCertificate makes the daemon talk to the API server with a client
	// certificate of its node's own, issued through a CertificateSigningRequest
	// and renewed before it expires.
	PerNodeCertificate *PerNodeCertificate `json:"perNodeCertificate"`

	MultusConfigFile       string `json:"multusConfigFile"`
	CNIConfigDir           string `json:"cniConfigDir"`
	MultusAutoconfigDir    string `json:"multusAutoconfigDir"`
	MultusMasterCNI        string `json:"multusMasterCNI"`
	ReadinessIndicatorFile string `json:"readinessindicatorfile"`
	ForceCNIVersion        bool   `json:"forceCNIVersion"`
	OverrideNetworkName    bool   `json:"overrideNetworkName"`

	// CNIDir is the plugin configuration's cniDir, which Overlay lays over every
	// request: where the attachment records are kept. The daemon reads it (to
	// count the records) with the plugin configuration's default and rule.
	CNIDir string `json:"cniDir"`

	// Ours.
	// Kubeconfig is the daemon's kubeconfig; empty means in-cluster.
	Kubeconfig string `json:"kubeconfig"`
	// MetricsAddress is the metrics listener's address; empty means all
	// interfaces on MetricsPort, as upstream listens.
	MetricsAddress string `json:"metricsAddress"`
	// MaxInFlight bounds concurrent CNI requests; past it a request gets CNI code
	// 11 at once instead of memory (Multus #1346).
	MaxInFlight int `json:"maxInFlight"`
	// MaxRequestBytes bounds a request body.
	MaxRequestBytes int64 `json:"maxRequestBytes"`
	// RequestTimeout bounds one request's processing.
	RequestTimeout Duration `json:"requestTimeout"`
	// ShutdownTimeout bounds how long in-flight requests may finish after SIGTERM.
	ShutdownTimeout Duration `json:"shutdownTimeout"`
	// CacheSyncTimeout bounds the informers' first sync; start-up fails past it.
	CacheSyncTimeout Duration `json:"cacheSyncTimeout"`
	// RemoveConfigOnShutdown removes the generated configuration when the daemon
	// stops. Off by default: with the file kept, the shim fails fast and
	// retryably while the daemon restarts, instead of the runtime falling back to
	// the primary network alone and starting pods without their other networks.
	RemoveConfigOnShutdown bool `json:"removeConfigOnShutdown"`
	// DynamicNetworks makes the daemon follow changes of its node's running
	// pods' networks annotation: networks added to it are attached inside the
	// pod's sandbox, networks removed from it detached.
	DynamicNetworks bool `json:"dynamicNetworks"`

	// Raw is the whole document, for Overlay.
	Raw map[string]json.RawMessage `json:"-"`
}

// PerNodeCertificate is upstream's per-node client certificate setting: with
// it, the daemon authenticates as system:multus:<node> (group system:multus)
// with a certificate of the kubernetes.io/kube-apiserver-client signer.
type PerNodeCertificate struct {
	Enabled bool `json:"enabled"`
	// BootstrapKubeconfig holds the credentials the daemon requests its
	// certificates with. Empty means the daemon's kubeconfig key, else the
	// pod's ServiceAccount (in-cluster), as upstream falls back to it.
	BootstrapKubeconfig string `json:"bootstrapKubeconfig"`
	// CertDir keeps the certificate and its key across restarts.
	CertDir string `json:"certDir"`
	// CertDuration is the lifetime requested of the signer (the CSR's
	// expirationSeconds): DefaultCertDuration when absent, at least
	// MinCertDuration, the API's lower bound.
	CertDuration Duration `json:"certDuration"`
}

// The per-node certificate's requested lifetimes: upstream's default, and the
// least a CertificateSigningRequest's expirationSeconds may ask for.
const (
	DefaultCertDuration = 10 * time.Minute
	MinCertDuration     = 10 * time.Minute
)

// daemonOnly are keys of the daemon's own, never laid over a request. The
// request's identity (cniVersion, name, type) stays the request's too.
var daemonOnly = []string{
	"cniVersion", "name", "type", "socketDir", "chrootDir", "metricsPort", "enablePprof", "connectionLimit",
	"perNodeCertificate", "multusConfigFile", "cniConfigDir", "multusAutoconfigDir", "multusMasterCNI",
	"forceCNIVersion", "overrideNetworkName", "kubeconfig", "metricsAddress", "maxInFlight", "maxRequestBytes",
	"requestTimeout", "shutdownTimeout", "cacheSyncTimeout", "removeConfigOnShutdown", "dynamicNetworks",
}

func daemonDefaults() DaemonConf {
	return DaemonConf{
		SocketDir:        DefaultDaemonSocketDir,
		MultusConfigFile: AutoConfig,
		CNIConfigDir:     DefaultCNIConfigDir,
		CNIDir:           DefaultCNIDir,
		MaxInFlight:      DefaultMaxInFlight,
		MaxRequestBytes:  DefaultMaxRequestBytes,
		RequestTimeout:   Duration{DefaultRequestTimeout},
		ShutdownTimeout:  Duration{DefaultShutdownTimeout},
		CacheSyncTimeout: Duration{DefaultCacheSync},
		LogLevel:         LevelError,
	}
}

// ParseDaemon decodes and validates daemon-config.json. Every error is a
// *FieldError naming the key. ConnectionLimit is never nil in its result: an
// absent connectionLimit is ConnectionsPerInFlight × MaxInFlight.
func ParseDaemon(data []byte) (*DaemonConf, error) {
	c := daemonDefaults()
	if err := decodeObject(data, &c); err != nil {
		return nil, asDaemonError(err)
	}
	if err := json.Unmarshal(data, &c.Raw); err != nil {
		return nil, &FieldError{Doc: "daemon config", Value: shorten(string(data)), Allowed: "a JSON object"}
	}
	// Upstream's level names are case-insensitive, and "" is its default.
	c.LogLevel = cmp.Or(strings.ToLower(c.LogLevel), LevelError)
	if err := validateDaemon(&c); err != nil {
		return nil, asDaemonError(err)
	}
	if c.ConnectionLimit == nil {
		// Upstream leaves the connections unbounded; ours follow maxInFlight.
		limit := ConnectionsPerInFlight * c.MaxInFlight
		c.ConnectionLimit = &limit
	}
	if p := c.PerNodeCertificate; p != nil && p.Enabled && p.CertDuration.Duration == 0 {
		p.CertDuration.Duration = DefaultCertDuration
	}
	return &c, nil
}

func asDaemonError(err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		out := *fe
		out.Doc = "daemon config"
		return &out
	}
	return err
}

func validateDaemon(c *DaemonConf) error {
	if c.CNIVersion != "" && !slices.Contains(cniVersions, c.CNIVersion) {
		return &FieldError{Field: "cniVersion", Value: c.CNIVersion, Allowed: allowedCNIVersions}
	}
	if c.MetricsPort != nil && (*c.MetricsPort < 1 || *c.MetricsPort > 65535) {
		return &FieldError{Field: "metricsPort", Value: fmt.Sprint(*c.MetricsPort), Allowed: "a port from 1 to 65535"}
	}
	if c.ConnectionLimit != nil && *c.ConnectionLimit < 1 {
		return &FieldError{Field: "connectionLimit", Value: fmt.Sprint(*c.ConnectionLimit), Allowed: "a positive integer"}
	}
	if c.MaxInFlight < 1 {
		return &FieldError{Field: "maxInFlight", Value: fmt.Sprint(c.MaxInFlight), Allowed: "a positive integer"}
	}
	if c.MaxRequestBytes < 1024 {
		return &FieldError{Field: "maxRequestBytes", Value: fmt.Sprint(c.MaxRequestBytes), Allowed: "at least 1024"}
	}
	for key, d := range map[string]Duration{"requestTimeout": c.RequestTimeout, "shutdownTimeout": c.ShutdownTimeout, "cacheSyncTimeout": c.CacheSyncTimeout} {
		if d.Duration <= 0 {
			return &FieldError{Field: key, Value: d.String(), Allowed: `a positive duration such as "10s"`}
		}
	}
	if err := validateLogging(&PluginConf{LogLevel: c.LogLevel, LogOptions: c.LogOptions}); err != nil {
		return err
	}
	paths := map[string]string{"socketDir": c.SocketDir, "cniConfigDir": c.CNIConfigDir, "cniDir": c.CNIDir}
	for key, p := range paths {
		if !filepath.IsAbs(p) {
			return &FieldError{Field: key, Value: p, Allowed: allowedAbsPath}
		}
	}
	for key, p := range map[string]string{"chrootDir": c.ChrootDir, "multusAutoconfigDir": c.MultusAutoconfigDir,
		"readinessindicatorfile": c.ReadinessIndicatorFile, "logFile": c.LogFile, "kubeconfig": c.Kubeconfig} {
		if p != "" && !filepath.IsAbs(p) {
			return &FieldError{Field: key, Value: p, Allowed: allowedAbsPath + ", or empty"}
		}
	}
	if c.MultusConfigFile == AutoConfig {
		if c.MultusAutoconfigDir == "" {
			return &FieldError{Field: "multusAutoconfigDir", Allowed: `a folder to find the primary CNI configuration in, when multusConfigFile is "auto"`}
		}
		if c.CNIVersion == "" {
			return &FieldError{Field: "cniVersion", Allowed: `a CNI version for the generated configuration, when multusConfigFile is "auto"`}
		}
	} else if !filepath.IsAbs(c.MultusConfigFile) {
		return &FieldError{Field: "multusConfigFile", Value: c.MultusConfigFile, Allowed: `"auto" or an absolute path`}
	}
	return validatePerNode(c.PerNodeCertificate)
}

func validatePerNode(p *PerNodeCertificate) error {
	if p == nil || !p.Enabled {
		return nil
	}
	if p.BootstrapKubeconfig != "" && !filepath.IsAbs(p.BootstrapKubeconfig) {
		return &FieldError{Field: "perNodeCertificate.bootstrapKubeconfig", Value: p.BootstrapKubeconfig,
			Allowed: allowedAbsPath + `, or empty for the daemon's kubeconfig or its ServiceAccount`}
	}
	if p.CertDir == "" || !filepath.IsAbs(p.CertDir) {
		return &FieldError{Field: "perNodeCertificate.certDir", Value: p.CertDir, Allowed: allowedAbsPath}
	}
	if d := p.CertDuration.Duration; d != 0 && d < MinCertDuration {
		return &FieldError{Field: "perNodeCertificate.certDuration", Value: p.CertDuration.String(),
			Allowed: fmt.Sprintf("a duration of at least %s (the least a CertificateSigningRequest may ask for)", MinCertDuration)}
	}
	return nil
}

// Overlay lays the daemon configuration's plugin keys over a request's plugin
// configuration, key by key, as upstream does, so that confDir, cniDir,
// namespaceIsolation and the like set on the node win over the shim's. The
// daemon's own keys and the request's cniVersion, name and type are not laid
// over; neither is readinessindicatorfile when the daemon generates the
// configuration, since it then watches the indicator itself.
func (c *DaemonConf) Overlay(request []byte) ([]byte, error) {
	var req map[string]json.RawMessage
	if err := json.Unmarshal(request, &req); err != nil || req == nil {
		return nil, &FieldError{Value: shorten(string(request)), Allowed: "a JSON object"}
	}
	// encoding/json matches keys without regard to case, so every rule here
	// does too: a request spelling "confdir" must not outvote the daemon's
	// "confDir", nor a daemon's "SocketDir" leak into the plugin config.
	generated := c.MultusConfigFile == AutoConfig
	for k, v := range c.Raw {
		if slices.ContainsFunc(daemonOnly, func(d string) bool { return strings.EqualFold(d, k) }) ||
			(generated && strings.EqualFold(k, "readinessindicatorfile")) {
			continue
		}
		deleteFold(req, k)
		req[k] = v
	}
	if generated {
		deleteFold(req, "readinessindicatorfile")
	}
	return json.Marshal(req)
}

// deleteFold deletes every key of m equal to key without regard to case.
func deleteFold(m map[string]json.RawMessage, key string) {
	for k := range m {
		if strings.EqualFold(k, key) {
			delete(m, k)
		}
	}
}
