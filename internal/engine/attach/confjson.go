package attach

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/polynet-cni/polynet/internal/cniconf"
)

// The helpers here edit the plugins of a CNI configuration as maps of raw JSON
// values (package cniconf reads and sets its top level), so keys they do not
// touch keep their exact bytes; a configuration that needs no edit is passed on
// byte for byte.

// plugins returns the plugin objects of a conf (itself) or a conflist. A non-empty
// "type" makes it a single conf whatever else it holds, the rule by which it runs
// (config.DelegateIsList).
func plugins(m map[string]json.RawMessage) ([]map[string]json.RawMessage, bool, error) {
	raw, isList := m["plugins"]
	if !isList || cniconf.String(m, "type") != "" {
		return []map[string]json.RawMessage{m}, false, nil
	}
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, true, fmt.Errorf("plugins: %w", err)
	}
	return list, true, nil
}

// declares reports whether any plugin declares the capability as true.
func declares(config []byte, capability string) (bool, error) {
	m, err := cniconf.Decode(config)
	if err != nil {
		return false, err
	}
	ps, _, err := plugins(m)
	if err != nil {
		return false, err
	}
	for _, p := range ps {
		var caps map[string]bool
		if raw, ok := p["capabilities"]; ok && json.Unmarshal(raw, &caps) == nil && caps[capability] {
			return true, nil
		}
	}
	return false, nil
}

// mergeCNIArgs merges args into the "args": {"cni": {...}} key of every plugin, the
// selection's values winning over the configuration's (R-4.1.2.1.6).
func mergeCNIArgs(config []byte, args map[string]any) ([]byte, error) {
	if len(args) == 0 {
		return config, nil
	}
	return editPlugins(config, func(p map[string]json.RawMessage) error { return mergeInto(p, args) })
}

// editPlugins applies edit to every plugin of a conf or conflist and returns the
// configuration re-encoded.
func editPlugins(config []byte, edit func(plugin map[string]json.RawMessage) error) ([]byte, error) {
	m, err := cniconf.Decode(config)
	if err != nil {
		return nil, err
	}
	ps, isList, err := plugins(m)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if err := edit(p); err != nil {
			return nil, err
		}
	}
	if isList {
		if m["plugins"], err = json.Marshal(ps); err != nil {
			return nil, err
		}
	}
	return json.Marshal(m)
}

func mergeInto(plugin map[string]json.RawMessage, args map[string]any) error {
	outer := map[string]json.RawMessage{}
	if raw, ok := plugin["args"]; ok {
		if err := json.Unmarshal(raw, &outer); err != nil || outer == nil {
			return fmt.Errorf("args: not a JSON object")
		}
	}
	cni := map[string]any{}
	if raw, ok := outer["cni"]; ok {
		// json.Number keeps the configuration's own large integers exact.
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&cni); err != nil || cni == nil {
			return fmt.Errorf("args.cni: not a JSON object")
		}
	}
	maps.Copy(cni, args)
	var err error
	if outer["cni"], err = json.Marshal(cni); err != nil {
		return err
	}
	plugin["args"], err = json.Marshal(outer)
	return err
}
