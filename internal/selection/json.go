package selection

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strings"
)

// parseJSON parses the JSON form: a JSON array of network selection
// element objects.
func parseJSON(value, defaultNamespace string) ([]Element, error) {
	if !strings.HasPrefix(value, "[") {
		return nil, &InvalidError{Index: -1, Reason: "value is not a JSON array of objects", Requirement: reqJSON}
	}
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(value), &raws); err != nil {
		return nil, &InvalidError{Index: -1, Reason: "value is not valid JSON: " + err.Error(), Requirement: reqJSON}
	}
	var elements []Element
	defaultRouteAt := -1
	for i, raw := range raws {
		e, err := decodeElement(i, raw, defaultNamespace)
		if err != nil {
			return nil, err
		}
		// R-4.1.2.1.9: the pod has one default route, so at most one element
		// may claim it.
		if e.HasDefaultRoute {
			if defaultRouteAt >= 0 {
				return nil, &InvalidError{
					Index: i, Network: e.Ref(), Field: "default-route",
					Reason:      fmt.Sprintf("is also set by element %d; at most one element may set it", defaultRouteAt),
					Requirement: reqDefaultRoute,
				}
			}
			defaultRouteAt = i
		}
		elements = append(elements, e)
	}
	return elements, nil
}

// elementDecoder decodes the keys of one element. Keys are kept as raw JSON so
// that a present-but-empty key can be told from an absent one and so that a type
// error names the key at fault. Keys it does not know are ignored: R-4.1.2.1a
// reserves keys without periods for the standard and lets other implementations
// add reverse-DNS keys, which must be tolerated.
type elementDecoder struct {
	index   int
	network string
	keys    map[string]json.RawMessage
}

// decodeElement decodes and validates element index of the JSON list. Keys are
// checked in a fixed order so that the first problem reported is deterministic.
func decodeElement(index int, raw json.RawMessage, defaultNamespace string) (Element, error) {
	d := &elementDecoder{index: index}
	if isNull(raw) || json.Unmarshal(raw, &d.keys) != nil {
		return Element{}, d.invalid("", "", "element is not a JSON object", reqJSON)
	}
	var e Element
	if err := d.identity(&e, defaultNamespace); err != nil {
		return Element{}, err
	}
	d.network = e.Ref()
	steps := []func(*Element) error{
		d.iface, d.ips, d.mac, d.guid, d.portMappings, d.bandwidth,
		d.cniArgs, d.defaultRoute, d.simpleStrings,
	}
	for _, step := range steps {
		if err := step(&e); err != nil {
			return Element{}, err
		}
	}
	// R-4.1.2.1.11: requested addresses and an IPAMClaim are two sources of
	// truth for the same thing; the standard makes the combination an error.
	if e.IPAMClaimReference != "" && e.IPs != nil {
		return Element{}, &ConflictError{
			Index: index, Network: d.network,
			Fields: []string{"ips", "ipam-claim-reference"}, Requirement: reqClaim,
		}
	}
	return e, nil
}

// invalid builds an InvalidError located at the element being decoded.
func (d *elementDecoder) invalid(field, value, reason, req string) *InvalidError {
	return &InvalidError{Index: d.index, Network: d.network, Field: field, Value: value, Reason: reason, Requirement: req}
}

// str returns the string value of key and whether the key is present. A
// present key that is not a JSON string, null included, is an error.
func (d *elementDecoder) str(key, req string) (string, bool, error) {
	raw, ok := d.keys[key]
	if !ok {
		return "", false, nil
	}
	s, ok := decodeString(raw)
	if !ok {
		return "", true, d.invalid(key, "", "want a string", req)
	}
	return s, true, nil
}

// identity decodes "name" (R-4.1.2.1.1) and "namespace" (R-4.1.2.1.2).
func (d *elementDecoder) identity(e *Element, defaultNamespace string) error {
	name, ok, err := d.str("name", reqName)
	if err != nil {
		return err
	}
	if !ok {
		return d.invalid("name", "", "must be present", reqName)
	}
	if r := labelReason(name); r != "" {
		return d.invalid("name", name, r, reqLabel)
	}
	ns, _, err := d.str("namespace", reqNamespace)
	if err != nil {
		return err
	}
	if ns == "" {
		ns = defaultNamespace
	} else if r := labelReason(ns); r != "" {
		return d.invalid("namespace", ns, r, reqLabel)
	}
	e.Name, e.Namespace = name, ns
	return nil
}

// iface decodes "interface" (R-4.1.2.1.5), falling back to the pre-3.2 Multus
// key "interfaceRequest" when "interface" is absent or empty so that old
// manifests keep working.
func (d *elementDecoder) iface(e *Element) error {
	key := "interface"
	name, _, err := d.str(key, reqInterface)
	if err != nil {
		return err
	}
	if name == "" {
		key = "interfaceRequest"
		if name, _, err = d.str(key, reqInterface); err != nil {
			return err
		}
	}
	if name != "" {
		if r := interfaceReason(name); r != "" {
			return d.invalid(key, name, r, reqInterface)
		}
	}
	e.Interface = name
	return nil
}

// ips decodes "ips" (R-4.1.2.1.3): a non-empty list of addresses or CIDRs.
func (d *elementDecoder) ips(e *Element) error {
	raw, ok := d.keys["ips"]
	if !ok {
		return nil
	}
	ips, ok := decodeStrings(raw)
	if !ok {
		return d.invalid("ips", "", "want an array of strings", reqIPs)
	}
	if len(ips) == 0 {
		return d.invalid("ips", "", "must contain at least one address", reqIPs)
	}
	for _, ip := range ips {
		if r := ipReason(ip); r != "" {
			return d.invalid("ips", ip, r, reqIPs)
		}
	}
	e.IPs = ips
	return nil
}

// mac decodes "mac" (R-4.1.2.1.4): a 6-byte Ethernet address. An empty string
// means "not requested", as upstream reads it: generators such as KubeVirt's write
// the key even when they have no address to ask for.
func (d *elementDecoder) mac(e *Element) error {
	s, ok, err := d.str("mac", reqMAC)
	if err != nil || !ok || s == "" {
		return err
	}
	if r := hardwareReason(s, 6, "a 6-byte Ethernet MAC address"); r != "" {
		return d.invalid("mac", s, r, reqMAC)
	}
	e.MAC = s
	return nil
}

// guid decodes "infiniband-guid" (R-4.1.2.1.10): an 8-byte InfiniBand GUID; an
// empty string means "not requested", like an empty mac.
func (d *elementDecoder) guid(e *Element) error {
	s, ok, err := d.str("infiniband-guid", reqGUID)
	if err != nil || !ok || s == "" {
		return err
	}
	if r := hardwareReason(s, 8, "an 8-byte InfiniBand GUID"); r != "" {
		return d.invalid("infiniband-guid", s, r, reqGUID)
	}
	e.InfinibandGUID = s
	return nil
}

// cniArgs decodes "cni-args" (R-4.1.2.1.6): an object passed through to the
// delegate. null is treated as absent, as a generator that always writes the
// key would produce it.
func (d *elementDecoder) cniArgs(e *Element) error {
	raw, ok := d.keys["cni-args"]
	if !ok || isNull(raw) {
		return nil
	}
	// Numbers stay json.Number, so a large integer reaches the delegate exactly.
	var args map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&args); err != nil || args == nil {
		return d.invalid("cni-args", "", "want a JSON object", reqCNIArgs)
	}
	e.CNIArgs = args
	return nil
}

// defaultRoute decodes "default-route" (R-4.1.2.1.9): a possibly empty list of
// gateway addresses without prefix length. Presence alone is meaningful.
func (d *elementDecoder) defaultRoute(e *Element) error {
	raw, ok := d.keys["default-route"]
	if !ok {
		return nil
	}
	gateways, ok := decodeStrings(raw)
	if !ok {
		return d.invalid("default-route", "", "want an array of strings", reqDefaultRoute)
	}
	var ips []net.IP
	for _, g := range gateways {
		ip := net.ParseIP(g)
		if ip == nil {
			return d.invalid("default-route", g, "is not an IP address (without prefix length)", reqDefaultRoute)
		}
		ips = append(ips, ip)
	}
	e.DefaultRoute, e.HasDefaultRoute = ips, true
	return nil
}

// simpleStrings decodes the string keys that need no validation beyond their
// type: "ipam-claim-reference" (R-4.1.2.1.11) and the upstream extension
// "deviceID", which the standard does not define and so cites no requirement.
func (d *elementDecoder) simpleStrings(e *Element) error {
	claim, _, err := d.str("ipam-claim-reference", reqClaim)
	if err != nil {
		return err
	}
	device, _, err := d.str("deviceID", "")
	if err != nil {
		return err
	}
	e.IPAMClaimReference, e.DeviceID = claim, device
	return nil
}

// isNull reports whether raw is the JSON literal null, which encoding/json
// would otherwise silently decode as a zero value.
func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// decodeString decodes raw as a JSON string, rejecting null and other types.
func decodeString(raw json.RawMessage) (string, bool) {
	var s string
	if isNull(raw) || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// decodeStrings decodes raw as a JSON array of strings, rejecting null both as
// the array and as an item.
func decodeStrings(raw json.RawMessage) ([]string, bool) {
	var items []json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &items) != nil {
		return nil, false
	}
	out := make([]string, 0, len(items))
	for _, item := range items {
		s, ok := decodeString(item)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}
