package delegate

import (
	"encoding/json"
	"fmt"

	"github.com/containernetworking/cni/libcni"

	"github.com/polynet-cni/polynet/internal/config"
)

// List parses a delegate configuration into a libcni list. A single conf becomes
// a one-plugin list carrying its name and cniVersion, which is how runtimes run
// single confs too. Every plugin type must be a plain file name, checked again here
// although resolution checked it, because this is the last step before exec.
func List(conf []byte) (*libcni.NetworkConfigList, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(conf, &probe); err != nil {
		return nil, fmt.Errorf("delegate config is not a JSON object: %w", err)
	}
	if _, ok := probe["plugins"]; !ok {
		wrapped, err := json.Marshal(map[string]any{
			"name":       probe["name"],
			"cniVersion": probe["cniVersion"],
			"plugins":    []json.RawMessage{conf},
		})
		if err != nil {
			return nil, err
		}
		conf = wrapped
	}
	list, err := libcni.NetworkConfFromBytes(conf)
	if err != nil {
		return nil, err
	}
	if len(list.Plugins) == 0 {
		return nil, fmt.Errorf("delegate config %q has no plugins", list.Name)
	}
	for i, p := range list.Plugins {
		if err := config.ValidatePluginType(p.Network.Type); err != nil {
			return nil, fmt.Errorf("plugin %d of %q: %w", i, list.Name, err)
		}
	}
	return list, nil
}
