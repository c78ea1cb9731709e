// Package netstatus builds and parses the pod annotation that reports the
// outcome of every network attachment, as defined by section 5 of the NPWG
// Kubernetes multi-network standard v1.3.
//
// One attachment's CNI ADD result, of any CNI version, is turned into one
// Entry by FromResult; the entries of all attachments are then written as a
// single JSON list with Encode. Decode reads such a list back, for callers that
// merge with or inspect an existing annotation. The package deliberately
// depends only on the standard library and the CNI result types, so that it can
// be used both by the thin plugin and by the daemon without pulling in a
// Kubernetes client.
package netstatus

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// Annotation is the pod annotation key under which the list of entries is
// published; it is a constant so that writers and readers cannot
// disagree on the spelling.
const Annotation = "k8s.v1.cni.cncf.io/network-status"

// Entry is one element of the annotation's JSON list and describes one network
// attachment of the pod. Its field names and JSON keys follow; Mtu and
// Gateway are additional keys kept because existing consumers of the
// annotation read them.
type Entry struct {
	// Name is "namespace/name" of the NetworkAttachmentDefinition, or the
	// name of the cluster-wide default network.
	Name string `json:"name"`
	// Interface is the name of the interface inside the pod.
	Interface string `json:"interface,omitempty"`
	// IPs are the attachment's addresses without prefix length.
	IPs []string `json:"ips,omitempty"`
	// Mac is the hardware address of Interface.
	Mac string `json:"mac,omitempty"`
	// Mtu is the interface MTU reported by the plugin, when it reported one.
	Mtu int `json:"mtu,omitempty"`
	// Default is true only for the cluster-wide default network; it is always
	// written so that readers need not guess about a missing key.
	Default bool `json:"default"`
	// DNS is the DNS configuration returned by the plugin, or nil when the
	// result carried none.
	DNS *DNS `json:"dns,omitempty"`
	// DeviceInfo is the device-info object of the attachment; the
	// caller fills it because it does not come from the CNI result.
	DeviceInfo json.RawMessage `json:"device-info,omitempty"`
	// Gateway lists the gateways of the result's default routes, in result
	// order and without duplicates.
	Gateway []string `json:"gateway,omitempty"`
	// DefaultRoute lists the gateways requested through the selection's
	// default-route key (R-5.3.6.4); the caller fills it.
	DefaultRoute []string `json:"default-route,omitempty"`
}

// DNS is the DNS part of an Entry. It mirrors the CNI result's DNS
// object so that the annotation does not expose the CNI library's types.
type DNS struct {
	// Nameservers are the resolver addresses, in priority order.
	Nameservers []string `json:"nameservers,omitempty"`
	// Domain is the local domain used for short host names.
	Domain string `json:"domain,omitempty"`
	// Search is the ordered list of search domains.
	Search []string `json:"search,omitempty"`
	// Options are resolver options passed through unchanged.
	Options []string `json:"options,omitempty"`
}

// FromResult builds the entry of one attachment from its ADD result, so that
// every result version from 0.1.0 to 1.1.0 is reported the same way.
//
// The result is first converted to the current (1.x) result types. network
// becomes the entry's name, ifName is the CNI_IFNAME the attachment was made
// with, and isDefault marks the cluster-wide default network. The reported
// interface is the sandbox interface named ifName, or else the first sandbox
// interface; preferring ifName keeps chained plugins that append
// host-side or extra interfaces from misreporting the attachment. A nil result
// gives the minimal entry carrying only the name, ifName and the default flag.
// DeviceInfo and DefaultRoute are left empty for the caller to set.
func FromResult(result types.Result, network, ifName string, isDefault bool) (Entry, error) {
	entry := Entry{Name: network, Interface: ifName, Default: isDefault}
	current, err := toCurrent(result)
	if err != nil {
		return Entry{}, err
	}
	if current == nil {
		return entry, nil
	}

	idx := sandboxInterface(current.Interfaces, ifName)
	if idx >= 0 {
		intf := current.Interfaces[idx]
		entry.Interface = intf.Name
		entry.Mac = intf.Mac
		entry.Mtu = intf.Mtu
	}
	owned := ownedIPs(current.IPs, idx)
	for _, ipc := range owned {
		entry.IPs = append(entry.IPs, ipc.Address.IP.String())
	}
	entry.DNS = dnsFrom(current.DNS)
	entry.Gateway = defaultGateways(current.Routes, owned)
	return entry, nil
}

// toCurrent returns result in the current result types. A nil result, typed
// or untyped, gives nil without error. A current result is used as is, which
// also accepts one whose CNIVersion was never set.
func toCurrent(result types.Result) (*types100.Result, error) {
	if result == nil {
		return nil, nil
	}
	if current, ok := result.(*types100.Result); ok {
		return current, nil
	}
	current, err := types100.NewResultFromResult(result)
	if err != nil {
		return nil, fmt.Errorf("convert cni result version %q to %s: %w",
			result.Version(), types100.ImplementedSpecVersion, err)
	}
	return current, nil
}

// sandboxInterface returns the index of the interface to report:
// the sandbox interface named ifName, else the first sandbox interface, else
// -1 when no interface lives in a sandbox.
func sandboxInterface(interfaces []*types100.Interface, ifName string) int {
	first := -1
	for i, intf := range interfaces {
		if intf == nil || intf.Sandbox == "" {
			continue
		}
		if intf.Name == ifName {
			return i
		}
		if first < 0 {
			first = i
		}
	}
	return first
}

// ownedIPs returns the IP configurations that belong to the reported
// interface idx, in result order. Configurations without an address
// are skipped; see belongsTo for the ownership rule.
func ownedIPs(ips []*types100.IPConfig, idx int) []*types100.IPConfig {
	var owned []*types100.IPConfig
	for _, ipc := range ips {
		if ipc != nil && len(ipc.Address.IP) > 0 && belongsTo(ipc, idx) {
			owned = append(owned, ipc)
		}
	}
	return owned
}

// belongsTo reports whether ipc belongs to the interface at idx. With a chosen
// interface (idx >= 0) that means being indexed to it; without one (idx < 0)
// it means naming no interface (a nil or negative index), which is how results
// before 0.3.0 and interface-less results describe their addresses. Because a
// chosen idx is always inside the interfaces list, a configuration indexed
// outside the list never belongs anywhere and is thereby ignored.
func belongsTo(ipc *types100.IPConfig, idx int) bool {
	if ipc.Interface == nil || *ipc.Interface < 0 {
		return idx < 0
	}
	return *ipc.Interface == idx
}

// dnsFrom copies the result's DNS configuration, returning nil when every
// field is empty so that the key is omitted.
func dnsFrom(dns types.DNS) *DNS {
	if dns.IsEmpty() {
		return nil
	}
	return &DNS{
		Nameservers: slices.Clone(dns.Nameservers),
		Domain:      dns.Domain,
		Search:      slices.Clone(dns.Search),
		Options:     slices.Clone(dns.Options),
	}
}

// defaultGateways returns the gateways of the result's default routes in
// result order without duplicates. A default route without a gateway uses the
// first gateway of the same address family among owned, the reported
// interface's IP configurations, because CNI leaves such a route's next hop to
// the interface's default gateway.
func defaultGateways(routes []*types.Route, owned []*types100.IPConfig) []string {
	var gateways []string
	for _, route := range routes {
		if route == nil || !isDefaultRoute(route.Dst) {
			continue
		}
		gw := route.GW
		if len(gw) == 0 {
			gw = familyGateway(owned, isIPv4(route.Dst.IP))
		}
		if len(gw) == 0 {
			continue
		}
		if s := gw.String(); !slices.Contains(gateways, s) {
			gateways = append(gateways, s)
		}
	}
	return gateways
}

// isDefaultRoute reports whether dst is 0.0.0.0/0 or ::/0.
func isDefaultRoute(dst net.IPNet) bool {
	ones, bits := dst.Mask.Size()
	return bits != 0 && ones == 0 && dst.IP.IsUnspecified()
}

// familyGateway returns the first non-empty gateway among ipcs whose address
// has the requested family, or nil.
func familyGateway(ipcs []*types100.IPConfig, v4 bool) net.IP {
	for _, ipc := range ipcs {
		if isIPv4(ipc.Address.IP) == v4 && len(ipc.Gateway) > 0 {
			return ipc.Gateway
		}
	}
	return nil
}

// isIPv4 reports whether ip is an IPv4 address, in either of Go's forms.
func isIPv4(ip net.IP) bool {
	return ip.To4() != nil
}

// Encode returns the annotation value for entries: a compact JSON list. No
// entries give "[]" rather than "null", so that readers always see a list.
func Encode(entries []Entry) (string, error) {
	if entries == nil {
		entries = []Entry{}
	}
	data, err := json.Marshal(entries)
	if err != nil {
		return "", fmt.Errorf("encode %s annotation: %w", Annotation, err)
	}
	return string(data), nil
}

// Decode parses an annotation value into its entries. An empty or blank value,
// as on a pod that has not been annotated yet, and a JSON null both give an
// empty, non-nil list.
func Decode(value string) ([]Entry, error) {
	if strings.TrimSpace(value) == "" {
		return []Entry{}, nil
	}
	var entries []Entry
	if err := json.Unmarshal([]byte(value), &entries); err != nil {
		return nil, fmt.Errorf("decode %s annotation: %w", Annotation, err)
	}
	if entries == nil {
		entries = []Entry{}
	}
	return entries, nil
}

// MergePatch is the JSON merge patch of a pod (for its status subresource) that
// sets the annotation to value and nothing else, carrying the pod's UID so the
// API server applies it to that pod only, never to a new pod of the same name.
// Both Kubernetes adapters send it, so the two modes write status alike.
func MergePatch(uid, value string) ([]byte, error) {
	return json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":         uid,
		"annotations": map[string]string{Annotation: value},
	}})
}
