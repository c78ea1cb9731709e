package selection

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
)

// portMappings decodes "portMappings" (R-4.1.2.1.7): a non-empty list of port
// mapping objects, each validated here so that the portmap plugin never sees a
// request it would reject halfway through a pod's attachments.
func (d *elementDecoder) portMappings(e *Element) error {
	raw, ok := d.keys["portMappings"]
	if !ok {
		return nil
	}
	var items []json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &items) != nil {
		return d.invalid("portMappings", "", "want an array of objects", reqPortMappings)
	}
	if len(items) == 0 {
		return d.invalid("portMappings", "", "must contain at least one port mapping", reqPortMappings)
	}
	mappings := make([]PortMapping, 0, len(items))
	for i, item := range items {
		pm, err := d.portMapping(fmt.Sprintf("portMappings[%d]", i), item)
		if err != nil {
			return err
		}
		mappings = append(mappings, pm)
	}
	e.PortMappings = mappings
	return nil
}

// portMapping decodes one port mapping object; path locates it in errors. Keys
// other than the four of R-4.1.2.1.7 are ignored, as they are on an element.
func (d *elementDecoder) portMapping(path string, raw json.RawMessage) (PortMapping, error) {
	var keys map[string]json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &keys) != nil {
		return PortMapping{}, d.invalid(path, "", "want an object", reqPortMappings)
	}
	pm := PortMapping{Protocol: "tcp"}
	for _, port := range []struct {
		key string
		dst *int
	}{{"hostPort", &pm.HostPort}, {"containerPort", &pm.ContainerPort}} {
		v, ok := keys[port.key]
		if !ok {
			return PortMapping{}, d.invalid(path+"."+port.key, "", "must be present", reqPortMappings)
		}
		n, ok := decodeInt(v)
		if !ok {
			return PortMapping{}, d.invalid(path+"."+port.key, "", "want an integer", reqPortMappings)
		}
		if n < 1 || n > 65535 {
			return PortMapping{}, d.invalid(path+"."+port.key, fmt.Sprint(n), "is not a port number from 1 to 65535", reqPortMappings)
		}
		*port.dst = int(n)
	}
	if v, ok := keys["protocol"]; ok {
		s, ok := decodeString(v)
		if !ok {
			return PortMapping{}, d.invalid(path+".protocol", "", "want a string", reqPortMappings)
		}
		switch p := strings.ToLower(s); p {
		case "tcp", "udp", "sctp":
			pm.Protocol = p
		case "":
		default:
			return PortMapping{}, d.invalid(path+".protocol", s, "is not TCP, UDP or SCTP", reqPortMappings)
		}
	}
	if v, ok := keys["hostIP"]; ok {
		s, ok := decodeString(v)
		if !ok {
			return PortMapping{}, d.invalid(path+".hostIP", "", "want a string", reqPortMappings)
		}
		if s != "" && net.ParseIP(s) == nil {
			return PortMapping{}, d.invalid(path+".hostIP", s, "is not an IP address", reqPortMappings)
		}
		pm.HostIP = s
	}
	return pm, nil
}

// bandwidth decodes "bandwidth" (R-4.1.2.1.8). Each given limit must be a
// positive integer, because the bandwidth plugin reads zero as "unset"; a burst
// without its rate cannot be shaped; and an object without any limit requests
// nothing, which is more likely a mistake than an intent.
func (d *elementDecoder) bandwidth(e *Element) error {
	raw, ok := d.keys["bandwidth"]
	if !ok {
		return nil
	}
	var keys map[string]json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &keys) != nil {
		return d.invalid("bandwidth", "", "want an object", reqBandwidth)
	}
	bw := &Bandwidth{}
	limits := []struct {
		key string
		dst *int64
	}{
		{"ingressRate", &bw.IngressRate}, {"ingressBurst", &bw.IngressBurst},
		{"egressRate", &bw.EgressRate}, {"egressBurst", &bw.EgressBurst},
	}
	for _, l := range limits {
		v, ok := keys[l.key]
		if !ok {
			continue
		}
		n, ok := decodeInt(v)
		if !ok {
			return d.invalid("bandwidth."+l.key, "", "want an integer", reqBandwidth)
		}
		if n <= 0 {
			return d.invalid("bandwidth."+l.key, fmt.Sprint(n), "is not a positive integer", reqBandwidth)
		}
		*l.dst = n
	}
	if *bw == (Bandwidth{}) {
		return d.invalid("bandwidth", "", "must set at least one of ingressRate, ingressBurst, egressRate or egressBurst", reqBandwidth)
	}
	if bw.IngressBurst != 0 && bw.IngressRate == 0 {
		return d.invalid("bandwidth.ingressBurst", "", "requires ingressRate", reqBandwidth)
	}
	if bw.EgressBurst != 0 && bw.EgressRate == 0 {
		return d.invalid("bandwidth.egressBurst", "", "requires egressRate", reqBandwidth)
	}
	e.Bandwidth = bw
	return nil
}

// decodeInt decodes raw as a JSON integer that fits in 64 bits. encoding/json
// parses the literal itself, so fractions ("80.5"), exponents ("8e1"), strings
// and null are all rejected rather than rounded or defaulted.
func decodeInt(raw json.RawMessage) (int64, bool) {
	var n int64
	if isNull(raw) || json.Unmarshal(raw, &n) != nil {
		return 0, false
	}
	return n, true
}
