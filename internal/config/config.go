// Package config decodes and validates the plugin configuration: the JSON object
// the container runtime writes to the multus binary's stdin.
//
// It accepts every key upstream Multus accepts, with upstream's defaults, and a
// few keys of our own for values upstream hard-codes. Defaults are filled in before
// decoding, so a value the user writes always wins, and unknown keys are ignored
// the way upstream ignores them. Every rejection is a *FieldError that names the
// key, so a node administrator can fix the file without reading our source.
//
// The package does no I/O: it judges the text it is given, not the files the text
// names.
package config

import (
	"encoding/json"
	"strings"
	"time"
)

// Defaults of the plugin configuration. Paths and names are upstream's; the three
// durations are the values upstream hard-codes, which our keys make adjustable.
const (
	// DefaultConfDir is where on-disk CNI configurations referenced by name live.
	DefaultConfDir = "/etc/cni/multus/net.d"
	// DefaultCNIDir holds the per-container scratch cache and the libcni result cache.
	DefaultCNIDir = "/var/lib/cni/multus"
	// DefaultBinDir is searched for delegate plugins before CNI_PATH.
	DefaultBinDir = "/opt/cni/bin"
	// DefaultMultusNamespace is where the cluster and default networks are looked up.
	DefaultMultusNamespace = "kube-system"
	// DefaultLogLevel keeps the plugin silent unless something is badly wrong.
	DefaultLogLevel = LevelPanic
	// DefaultDaemonSocketDir is the directory of the thick daemon's socket.
	DefaultDaemonSocketDir = "/run/multus/"
	// DefaultAPITimeout bounds one Kubernetes API request.
	DefaultAPITimeout = 10 * time.Second
	// DefaultAPIRetryBudget bounds the total time spent retrying transient API failures.
	DefaultAPIRetryBudget = 10 * time.Second
	// DefaultReadinessTimeout bounds how long ADD waits for the readiness indicator file.
	DefaultReadinessTimeout = 45 * time.Second
	// DefaultGCGracePeriod spares records younger than this from GC: an ADD may
	// have started after the runtime took its list of valid attachments.
	DefaultGCGracePeriod = time.Minute
	// DefaultDeviceInfoDir is the device-info spec's base folder (D-4.1, D-4.2).
	DefaultDeviceInfoDir = "/var/run/k8s.cni.cncf.io/devinfo"
	// DefaultPodResourcesSocket is kubelet's PodResources API.
	DefaultPodResourcesSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"
	// DefaultKubeletCheckpoint is kubelet's device-plugin checkpoint file, read
	// when the PodResources API is not available.
	DefaultKubeletCheckpoint = "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint"
	// DefaultMaxNetworksPerPod bounds the networks one pod's annotation may
	// request: generous for real pods, which rarely have more than a handful.
	DefaultMaxNetworksPerPod = 32
)

// Log levels the logLevel key accepts, from the most to the least verbose. They
// are upstream's names, so existing configurations keep working.
const (
	// LevelDebug logs everything.
	LevelDebug = "debug"
	// LevelVerbose logs progress, warnings and errors.
	LevelVerbose = "verbose"
	// LevelError logs errors only.
	LevelError = "error"
	// LevelPanic logs only failures that abort the process.
	LevelPanic = "panic"
)

// PluginConf is the decoded plugin configuration. Field names follow upstream's
// JSON keys so that a configuration written for upstream Multus means the same
// here.
type PluginConf struct {
	// CNIVersion is the CNI spec version the runtime speaks to us; a missing
	// version is stored as "0.1.0", as the CNI spec prescribes.
	CNIVersion string `json:"cniVersion"`
	// Name is the network name the runtime knows us by.
	Name string `json:"name"`
	// Type is the plugin binary: "multus" (thin) or "multus-shim" (thick).
	Type string `json:"type"`
	// Kubeconfig is the path of the kubeconfig file; empty means in-cluster
	// configuration when available, else no Kubernetes at all.
	Kubeconfig string `json:"kubeconfig"`
	// ConfDir is where on-disk CNI configurations named by a network are read.
	ConfDir string `json:"confDir"`
	// CNIDir holds the scratch cache that lets DEL work without the API server.
	CNIDir string `json:"cniDir"`
	// BinDir lists, colon-separated, the directories searched for delegate
	// plugins before CNI_PATH; see BinDirs.
	BinDir string `json:"binDir"`
	// Delegates are inline CNI configurations; the first is the cluster network.
	// They are used only when ClusterNetwork is empty, and cleared otherwise.
	Delegates []json.RawMessage `json:"delegates"`
	// ClusterNetwork names the cluster default network (a NAD, a configuration
	// file or a configuration name); it takes precedence over Delegates.
	ClusterNetwork string `json:"clusterNetwork"`
	// DefaultNetworks are attached to every pod outside SystemNamespaces.
	DefaultNetworks []string `json:"defaultNetworks"`
	// MultusNamespace is where ClusterNetwork and DefaultNetworks are looked up.
	MultusNamespace string `json:"multusNamespace"`
	// SystemNamespaces are namespaces whose pods do not get DefaultNetworks.
	SystemNamespaces []string `json:"systemNamespaces"`
	// NamespaceIsolation restricts pods to NADs of their own namespace and of
	// GlobalNamespaces.
	NamespaceIsolation bool `json:"namespaceIsolation"`
	// GlobalNamespaces are the namespaces any pod may use NADs from when
	// NamespaceIsolation is on; it is never empty ("default" when unset).
	GlobalNamespaces CommaList `json:"globalNamespaces"`
	// ReadinessIndicatorFile is a path whose existence means the cluster network
	// is ready; ADD waits for it.
	ReadinessIndicatorFile string `json:"readinessindicatorfile"`
	// LogFile is the path of the log file; empty means no file.
	LogFile string `json:"logFile"`
	// LogLevel is one of the Level constants, stored lower case.
	LogLevel string `json:"logLevel"`
	// LogToStderr sends log lines to stderr as well.
	LogToStderr bool `json:"logToStderr"`
	// LogOptions controls rotation of LogFile.
	LogOptions LogOptions `json:"logOptions"`
	// Capabilities declares which runtimeConfig keys the runtime should send.
	Capabilities map[string]bool `json:"capabilities"`
	// RuntimeConfig holds what the runtime sent for the declared capabilities.
	RuntimeConfig map[string]json.RawMessage `json:"runtimeConfig"`
	// RetryDeleteOnError is accepted for compatibility. Upstream drops its cache
	// after a failed DEL unless it is set; we always keep the attachment record
	// until every delegate's DEL has succeeded, so a retried DEL can finish.
	RetryDeleteOnError bool `json:"retryDeleteOnError"`
	// AuxiliaryCNIChainName enables the auxiliary CNI chain of that name.
	AuxiliaryCNIChainName string `json:"auxiliaryCNIChainName"`
	// DaemonSocketDir is the directory of the thick daemon's socket (shim only).
	DaemonSocketDir string `json:"daemonSocketDir"`
	// PrevResult is the previous plugin's result when we are chained.
	PrevResult json.RawMessage `json:"prevResult,omitempty"`
	// APITimeout bounds one Kubernetes API request. Ours: upstream hard-codes it
	// and users asked to set it (Multus issue #1461).
	APITimeout Duration `json:"apiTimeout"`
	// APIRetryBudget bounds the total time spent retrying transient failures of
	// the pod and NAD lookups. Ours, like APITimeout.
	APIRetryBudget Duration `json:"apiRetryBudget"`
	// ReadinessIndicatorTimeout bounds how long ADD waits for
	// ReadinessIndicatorFile. Ours, like APITimeout.
	ReadinessIndicatorTimeout Duration `json:"readinessIndicatorTimeout"`
	// StrictNetworkSelection fails ADD on an invalid networks annotation, as
	// upstream does, instead of ignoring it as the standard says.
	StrictNetworkSelection bool `json:"strictNetworkSelection"`
	// ValidAttachments is what the runtime still uses, given to GC (CNI 1.1:
	// "cni.dev/valid-attachments"; libcni also writes the spec's earlier name
	// "cni.dev/attachments", read when the first is absent).
	ValidAttachments       []Attachment `json:"cni.dev/valid-attachments,omitempty"`
	LegacyValidAttachments []Attachment `json:"cni.dev/attachments,omitempty"`
	// GCGracePeriod spares records younger than this from GC. Ours.
	GCGracePeriod Duration `json:"gcGracePeriod"`
	// DeviceInfoDir, PodResourcesSocket and KubeletCheckpoint locate device
	// information; ours, for nodes (and tests) that keep them elsewhere.
	DeviceInfoDir      string `json:"deviceInfoDir"`
	PodResourcesSocket string `json:"podResourcesSocket"`
	KubeletCheckpoint  string `json:"kubeletCheckpoint"`
	// AllowPodDeviceID lets the deviceID of a pod's selection (upstream's
	// extension) choose the device of a network whose NAD names no resource.
	// Ours, off: upstream always honours it, which lets a namespace user point
	// a host-device or SR-IOV network at a device kubelet never gave the pod.
	AllowPodDeviceID bool `json:"allowPodDeviceID"`
	// MaxNetworksPerPod bounds the networks one pod's annotation may request:
	// each costs a NAD read and a delegate exec. Ours; upstream has no bound.
	MaxNetworksPerPod int `json:"maxNetworksPerPod"`
}

// Attachment names one attachment the runtime considers valid.
type Attachment struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
}

// Valid returns the attachments given to GC.
func (c *PluginConf) Valid() []Attachment {
	if c.ValidAttachments != nil {
		return c.ValidAttachments
	}
	return c.LegacyValidAttachments
}

// LogOptions controls rotation of the log file. The fields are pointers so that
// an explicit 0 (no limit) differs from an absent key (the default); Resolved
// applies the defaults.
type LogOptions struct {
	// MaxAge is how many days a rotated file is kept.
	MaxAge *int `json:"maxAge,omitempty"`
	// MaxSize is the size in megabytes at which the file is rotated.
	MaxSize *int `json:"maxSize,omitempty"`
	// MaxBackups is how many rotated files are kept.
	MaxBackups *int `json:"maxBackups,omitempty"`
	// Compress gzips rotated files.
	Compress *bool `json:"compress,omitempty"`
}

// Resolved returns the options with upstream's defaults filled in for absent
// keys: maxAge 5 days, maxSize 100 megabytes, maxBackups 5, compress true.
func (o LogOptions) Resolved() (maxAgeDays, maxSizeMB, maxBackups int, compress bool) {
	maxAgeDays, maxSizeMB, maxBackups, compress = 5, 100, 5, true
	if o.MaxAge != nil {
		maxAgeDays = *o.MaxAge
	}
	if o.MaxSize != nil {
		maxSizeMB = *o.MaxSize
	}
	if o.MaxBackups != nil {
		maxBackups = *o.MaxBackups
	}
	if o.Compress != nil {
		compress = *o.Compress
	}
	return maxAgeDays, maxSizeMB, maxBackups, compress
}

// defaults returns the configuration every decode starts from.
func defaults() PluginConf {
	return PluginConf{
		ConfDir:                   DefaultConfDir,
		CNIDir:                    DefaultCNIDir,
		BinDir:                    DefaultBinDir,
		MultusNamespace:           DefaultMultusNamespace,
		SystemNamespaces:          []string{"kube-system"},
		LogLevel:                  DefaultLogLevel,
		LogToStderr:               true,
		DaemonSocketDir:           DefaultDaemonSocketDir,
		APITimeout:                Duration{DefaultAPITimeout},
		APIRetryBudget:            Duration{DefaultAPIRetryBudget},
		ReadinessIndicatorTimeout: Duration{DefaultReadinessTimeout},
		GCGracePeriod:             Duration{DefaultGCGracePeriod},
		DeviceInfoDir:             DefaultDeviceInfoDir,
		PodResourcesSocket:        DefaultPodResourcesSocket,
		KubeletCheckpoint:         DefaultKubeletCheckpoint,
		MaxNetworksPerPod:         DefaultMaxNetworksPerPod,
	}
}

// ParsePlugin decodes and validates the plugin configuration. Every error is a
// *FieldError naming the offending key. On success CNIVersion is set,
// GlobalNamespaces is not empty, LogLevel is lower case, and Delegates is empty
// whenever ClusterNetwork is set.
func ParsePlugin(data []byte) (*PluginConf, error) {
	c := defaults()
	if err := decodeObject(data, &c); err != nil {
		return nil, err
	}
	normalize(&c)
	if err := validate(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

// normalize applies the meaning of empty values before validation.
func normalize(c *PluginConf) {
	if c.CNIVersion == "" {
		c.CNIVersion = "0.1.0"
	}
	if c.ClusterNetwork != "" {
		c.Delegates = nil
	}
	if len(c.GlobalNamespaces) == 0 {
		c.GlobalNamespaces = CommaList{"default"}
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	c.LogLevel = strings.ToLower(c.LogLevel)
}

// BinDirs returns the directories of BinDir, in order, without empty items: the
// directories searched for delegate plugins before CNI_PATH.
func (c *PluginConf) BinDirs() []string {
	var dirs []string
	for _, d := range strings.Split(c.BinDir, ":") {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}
