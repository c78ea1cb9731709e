// Package cnicode numbers the CNI error codes this project returns. The spec
// reserves 0-99 for its own codes; 100 and up are ours. Error types across the
// project report their code through a CNICode method, and the process boundary
// (package plugin) is the one place that reads it.
package cnicode

// Codes from the CNI spec that we use deliberately.
const (
	IncompatibleVersion  uint = 1
	UnknownContainer     uint = 3
	InvalidEnvironment   uint = 4
	IOFailure            uint = 5
	DecodingFailure      uint = 6
	InvalidNetworkConfig uint = 7
	// TryAgainLater tells the runtime the condition is transient: the API server
	// or the daemon is unreachable, the readiness indicator is not there yet.
	TryAgainLater uint = 11
	// PluginNotAvailable answers STATUS when pods cannot be added now.
	PluginNotAvailable uint = 50
	Internal           uint = 999
)

// Our own codes.
const (
	// PodUIDMismatch: the sandbox's K8S_POD_UID is not the API pod's UID.
	PodUIDMismatch uint = 100
	// NetworkNotFound: a requested network has no NAD or configuration.
	NetworkNotFound uint = 101
	// NetworkRefused: the pod may not use the network (namespace isolation).
	NetworkRefused uint = 102
	// InterfaceConflict: two attachments want the same pod interface name.
	InterfaceConflict uint = 103
	// CapabilityMissing: a selection asks for a runtime argument no plugin of the
	// network declares.
	CapabilityMissing uint = 104
	// InvalidSelection: the networks annotation is invalid and the configuration
	// says to fail rather than ignore it.
	InvalidSelection uint = 105
	// RecordCorrupt: a sandbox's attachment record cannot be trusted.
	RecordCorrupt uint = 106
	// KubernetesAPI: the API server answered with an error that retrying will
	// not fix (for example 403 Forbidden).
	KubernetesAPI uint = 107
	// DeviceUnavailable: a network needs a device the pod was not allocated.
	DeviceUnavailable uint = 108
)

// Coder is implemented by errors that carry a CNI code.
type Coder interface {
	CNICode() uint
}
