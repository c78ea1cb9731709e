package attach

import (
	"encoding/json"

	"github.com/polynet-cni/polynet/internal/selection"
)

// capabilityArgs builds one selection's runtime arguments. Each requested key must
// be declared by a plugin of the network, else the attachment fails: the standard
// requires it, where upstream passes the request on and the plugin silently
// ignores it (a GAP not copied).
func capabilityArgs(network string, cfg []byte, sel *selection.Element) (map[string]json.RawMessage, error) {
	type request struct {
		key, capability, requirement string
		value                        any
		present                      bool
	}
	reqs := []request{
		{"ips", "ips", "R-4.1.2.1.3", sel.IPs, sel.IPs != nil},
		{"mac", "mac", "R-4.1.2.1.4", sel.MAC, sel.MAC != ""},
		{"infiniband-guid", "infinibandGUID", "R-4.1.2.1.10", sel.InfinibandGUID, sel.InfinibandGUID != ""},
		{"portMappings", "portMappings", "R-4.1.2.1.7", sel.PortMappings, sel.PortMappings != nil},
		{"bandwidth", "bandwidth", "R-4.1.2.1.8", sel.Bandwidth, sel.Bandwidth != nil},
	}
	args := map[string]json.RawMessage{}
	for _, r := range reqs {
		if !r.present {
			continue
		}
		ok, err := declares(cfg, r.capability)
		if err != nil {
			return nil, &ConfigError{Network: network, Source: "capabilities", Err: err}
		}
		if !ok {
			return nil, &CapabilityError{Network: network, Key: r.key, Capability: r.capability, Requirement: r.requirement}
		}
		if args[r.capability], err = json.Marshal(r.value); err != nil {
			return nil, err
		}
	}
	if len(args) == 0 {
		return nil, nil
	}
	return args, nil
}
