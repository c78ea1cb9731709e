package attach

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
)

// The helpers here edit a CNI configuration as a map of raw JSON values, so keys
// they do not touch keep their exact bytes; a configuration that needs no edit is
// passed on byte for byte.

func decodeObject(config []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(config, &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	return m, nil
}

// stringField returns a top-level string key, "" when absent or not a string.
func stringField(m map[string]json.RawMessage, key string) string {
	var s string
	if raw, ok := m[key]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

// ensureTopLevel sets name and cniVersion when they are missing or empty:
// injects the NAD's name, and upstream gives a delegate without a version
// the meta-plugin's own.
func ensureTopLevel(config []byte, name, cniVersion string) ([]byte, error) {
	m, err := decodeObject(config)
	if err != nil {
		return nil, err
	}
	changed := false
	for key, value := range map[string]string{"name": name, "cniVersion": cniVersion} {
		if stringField(m, key) == "" && value != "" {
			m[key], _ = json.Marshal(value)
			changed = true
		}
	}
	if !changed {
		return config, nil
	}
	return json.Marshal(m)
}

// plugins returns the plugin objects of a conf (itself) or a conflist. A non-empty
// "type" makes it a single conf whatever else it holds, the rule by which it runs
// (config.DelegateIsList).
func plugins(m map[string]json.RawMessage) ([]map[string]json.RawMessage, bool, error) {
	raw, isList := m["plugins"]
	if !isList || stringField(m, "type") != "" {
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
	m, err := decodeObject(config)
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
	m, err := decodeObject(config)
	if err != nil {
		return nil, err
	}
	ps, isList, err := plugins(m)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if err := mergeInto(p, args); err != nil {
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
