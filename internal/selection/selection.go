// Package selection parses the pod annotation k8s.v1.cni.cncf.io/networks, the
// network selection annotation of the Network Plumbing Working Group multi-network
// standard (v1.3, section 4), into typed requests.
//
// The package is deliberately pure: it imports only the standard library, does
// no I/O and knows nothing about Kubernetes objects. That keeps the rules of the
// standard in one place where they can be tested exhaustively and fuzzed, and
// leaves the decision of what to do with an invalid annotation (the standard
// says it SHALL be ignored) to the caller, which knows whether it is a webhook,
// a controller or the CNI plugin itself.
//
// Requirement numbers such as R-4.1.2.1.3 in this package refer to the sections
// of the standard; they appear in doc comments, in errors and in test names so
// that a reader can trace every rule back to its source.
package selection

import (
	"net"
	"strings"
)

// Annotation keys read by the engine. They are exported so that every component
// spells them the same way.
const (
	// NetworksAnnotation is the pod annotation that selects additional networks
	//
	NetworksAnnotation = "k8s.v1.cni.cncf.io/networks"
	// DefaultNetworkAnnotation is the upstream Multus extension that replaces the
	// cluster default network of one pod. Its value names one network in the
	// syntax of NetworksAnnotation, so Parse reads it too; checking that exactly
	// one element was given is left to the caller.
	DefaultNetworkAnnotation = "v1.multus-cni.io/default-network"
)

// Element is one network selection element: a request to attach the pod to the
// network described by one NetworkAttachmentDefinition, with the optional
// per-attachment parameters of R-4.1.2.1. Fields that are not requested keep
// their zero value so that the engine can tell "not requested" from any real
// request and pass only requested parameters to the delegate plugin.
type Element struct {
	// Name is the NetworkAttachmentDefinition name (R-4.1.2.1.1); it is never
	// empty in a parsed element.
	Name string
	// Namespace is the NetworkAttachmentDefinition namespace (R-4.1.2.1.2); it
	// is the defaultNamespace argument of Parse when the annotation gives none.
	Namespace string
	// Interface is the requested interface name inside the pod (R-4.1.2.1.5);
	// "" means the engine generates one.
	Interface string
	// IPs are the requested addresses, as given (an address or a CIDR), in the
	// order given (R-4.1.2.1.3); nil means not requested.
	IPs []string
	// MAC is the requested Ethernet address, as given (R-4.1.2.1.4).
	MAC string
	// InfinibandGUID is the requested InfiniBand GUID, as given (R-4.1.2.1.10).
	InfinibandGUID string
	// PortMappings are the requested host port mappings (R-4.1.2.1.7); nil means
	// not requested.
	PortMappings []PortMapping
	// Bandwidth is the requested traffic shaping (R-4.1.2.1.8); nil means not
	// requested.
	Bandwidth *Bandwidth
	// CNIArgs are plugin specific arguments passed through to the delegate
	// (R-4.1.2.1.6); nil means none. Numbers are float64, as encoding/json
	// decodes them.
	CNIArgs map[string]any
	// DefaultRoute holds the gateways for which this attachment should carry the
	// pod's default route (R-4.1.2.1.9). It may be empty even when
	// HasDefaultRoute is true, which is why both fields exist.
	DefaultRoute []net.IP
	// HasDefaultRoute reports that the key "default-route" was present, even as
	// an empty list: the standard gives the empty list its own meaning.
	HasDefaultRoute bool
	// IPAMClaimReference names the IPAMClaim that holds this attachment's
	// addresses (R-4.1.2.1.11).
	IPAMClaimReference string
	// DeviceID is the upstream Multus extension key "deviceID", used to hand a
	// specific device (for example an SR-IOV VF) to the delegate plugin.
	DeviceID string
}

// Ref returns "namespace/name", the form used to look the network up and to
// name it in errors and events.
func (e Element) Ref() string {
	return e.Namespace + "/" + e.Name
}

// PortMapping is one requested host port mapping (R-4.1.2.1.7). Its JSON shape
// is the one the portmap CNI plugin expects in runtimeConfig.portMappings, so a
// slice of PortMapping can be marshalled straight into a delegate's
// configuration.
type PortMapping struct {
	// HostPort is the port opened on the node, from 1 to 65535.
	HostPort int `json:"hostPort"`
	// ContainerPort is the port in the pod traffic is forwarded to, from 1 to
	// 65535.
	ContainerPort int `json:"containerPort"`
	// Protocol is "tcp", "udp" or "sctp", normalised to lower case because
	// that is how the portmap plugin compares it; "tcp" when not given.
	Protocol string `json:"protocol"`
	// HostIP restricts the mapping to one node address; "" means all of them.
	HostIP string `json:"hostIP,omitempty"`
}

// Bandwidth is a requested traffic shaping (R-4.1.2.1.8). Its JSON shape is the
// one the bandwidth CNI plugin expects in runtimeConfig.bandwidth; unset values
// are omitted so that the plugin does not mistake them for a zero limit.
type Bandwidth struct {
	// IngressRate is the ingress limit in bits per second; 0 means unset.
	IngressRate int64 `json:"ingressRate,omitempty"`
	// IngressBurst is the ingress burst in bits; it requires IngressRate.
	IngressBurst int64 `json:"ingressBurst,omitempty"`
	// EgressRate is the egress limit in bits per second; 0 means unset.
	EgressRate int64 `json:"egressRate,omitempty"`
	// EgressBurst is the egress burst in bits; it requires EgressRate.
	EgressBurst int64 `json:"egressBurst,omitempty"`
}

// Parse parses the value of the networks annotation. defaultNamespace, normally
// the pod's namespace, is used for every element that does not name its own
// namespace (R-4.1.1, R-4.1.2.1.2); it is used as given.
//
// An empty or whitespace-only value, like an empty JSON list, requests no
// network and yields (nil, nil). Otherwise Parse returns either the elements,
// in the annotation's order, or an error, never both. The same network may be
// requested several times. The error is the first problem found, either
// an *InvalidError (the standard says the annotation SHALL then be ignored) or a
// *ConflictError (the standard says it MUST be an error); the caller chooses.
func Parse(value, defaultNamespace string) ([]Element, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, nil
	}
	// the two forms are told apart by characters that the JSON form
	// cannot do without and that no DNS-1123 label contains.
	if strings.ContainsAny(value, `[{"`) {
		return parseJSON(value, defaultNamespace)
	}
	return parseComma(value, defaultNamespace)
}
