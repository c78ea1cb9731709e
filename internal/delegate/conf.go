package delegate

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// List parses a delegate configuration into a libcni list. A single conf becomes
// a one-plugin list carrying its name and cniVersion, which is how runtimes run
// single confs too. Every plugin type must be a plain file name (ValidateType).
func List(config []byte) (*libcni.NetworkConfigList, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(config, &probe); err != nil {
		return nil, fmt.Errorf("delegate config is not a JSON object: %w", err)
	}
	if _, ok := probe["plugins"]; !ok {
		wrapped, err := json.Marshal(map[string]json.RawMessage{
			"name":       probe["name"],
			"cniVersion": probe["cniVersion"],
			"plugins":    json.RawMessage("[" + string(config) + "]"),
		})
		if err != nil {
			return nil, err
		}
		config = wrapped
	}
	list, err := libcni.NetworkConfFromBytes(config)
	if err != nil {
		return nil, err
	}
	if len(list.Plugins) == 0 {
		return nil, fmt.Errorf("delegate config %q has no plugins", list.Name)
	}
	for i, p := range list.Plugins {
		if err := ValidateType(p.Network.Type); err != nil {
			return nil, fmt.Errorf("plugin %d of %q: %w", i, list.Name, err)
		}
	}
	return list, nil
}

// ValidateType refuses a plugin type that is not a plain file name: a NAD is
// written by namespace users, and a type such as "../../sbin/reboot" must never
// reach exec (CVE-2021-20206). libcni refuses path separators too; this check
// gives the clear error first and also refuses "..".
func ValidateType(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("plugin type is empty")
	case strings.ContainsAny(t, `/\`) || t == "." || t == "..":
		return fmt.Errorf("plugin type %q is not a plain file name: only binaries in binDir and CNI_PATH run", t)
	case strings.ContainsRune(t, 0):
		return fmt.Errorf("plugin type %q contains a NUL byte", t)
	}
	return nil
}
