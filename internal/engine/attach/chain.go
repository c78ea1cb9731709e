package attach

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/polynet-cni/polynet/internal/cniconf"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// chainName is what a network or chain name must look like to name a folder:
// the CNI spec's rule for a network name, which also keeps "..", "/" and the
// like out of the path (libcni itself joins any name to the folder).
var chainName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// subdirectoryPlugins returns the plugin configurations (*.conf, in name order)
// of the folder <dir>/<name>, which libcni appends to a conflist of that name
// loaded from dir unless the conflist sets loadOnlyInlinedPlugins: how a
// cluster network's chain gets, say, a tuning plugin dropped in by another
// DaemonSet. A missing folder has none. It is libcni's
// NetworkPluginConfsFromFiles, which this package cannot call (see confFiles),
// returning each file's bytes; its errors name the file.
func subdirectoryPlugins(dir, name string) ([]json.RawMessage, error) {
	if !chainName.MatchString(name) {
		return nil, fmt.Errorf("name %q cannot name a plugin folder", name)
	}
	files, err := confFiles(filepath.Join(dir, name), []string{".conf"})
	if err != nil {
		return nil, err
	}
	var out []json.RawMessage
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		m, err := cniconf.Decode(data)
		if err != nil || cniconf.String(m, "type") == "" {
			return nil, fmt.Errorf("plugin configuration %s has no type", f)
		}
		out = append(out, data)
	}
	return out, nil
}

// withSubdirectoryPlugins appends the folder's plugins to a conflist read from
// path, as libcni's NetworkConfFromFile does, and returns the conflist's bytes
// with them (libcni keeps them apart, in its list's Plugins).
func withSubdirectoryPlugins(path string, cfg []byte) ([]byte, error) {
	m, err := cniconf.Decode(cfg)
	if err != nil {
		return nil, err
	}
	// A single conf (a non-empty type) has no chain to extend; a conflist may
	// even have no "plugins" of its own and take them all from the folder.
	if cniconf.String(m, "type") != "" {
		return cfg, nil
	}
	if only, err := flag(m, "loadOnlyInlinedPlugins"); err != nil || only {
		return cfg, err
	}
	extra, err := subdirectoryPlugins(filepath.Dir(path), cniconf.String(m, "name"))
	if err != nil || len(extra) == 0 {
		return cfg, err
	}
	var list []json.RawMessage
	if raw, ok := m["plugins"]; ok {
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("plugins: %w", err)
		}
	}
	if m["plugins"], err = json.Marshal(append(list, extra...)); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// auxiliaryChain builds upstream's auxiliary CNI chain: the plugins found in
// <folder of clusterNetwork>/<auxiliaryCNIChainName>/, run as an attachment of
// their own after every other, behind the passthru plugin, which gives them an
// empty previous result. Nothing is added when the folder has no plugin.
func auxiliaryChain(in Input) (*Planned, error) {
	name := in.Conf.AuxiliaryCNIChainName
	if name == "" {
		return nil, nil
	}
	if !strings.Contains(in.Conf.ClusterNetwork, "/") {
		return nil, &ConfigError{Network: name, Source: "auxiliaryCNIChainName",
			Err: fmt.Errorf("the auxiliary chain needs clusterNetwork to be a file or folder path, not %q", in.Conf.ClusterNetwork)}
	}
	dir := in.Conf.ClusterNetwork
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		dir = filepath.Dir(dir)
	}
	extra, err := subdirectoryPlugins(dir, name)
	if err != nil {
		return nil, &ConfigError{Network: name, Source: "auxiliary chain folder", Err: err}
	}
	if len(extra) == 0 {
		return nil, nil
	}
	plugins := append([]json.RawMessage{json.RawMessage(`{"type":"passthru","name":"passthru-cni"}`)}, extra...)
	// CHECK is off for the chain: its plugins act on other attachments'
	// interfaces (a sysctl of eth0, say), while CHECK would look for the
	// placeholder interface the chain runs under, which never exists.
	cfg, err := json.Marshal(map[string]any{"cniVersion": in.Conf.CNIVersion, "name": name, "disableCheck": true, "plugins": plugins})
	if err != nil {
		return nil, err
	}
	return &Planned{Attachment: podnet.Attachment{Network: name, Config: cfg}, Auxiliary: true}, nil
}

// flag reads a conflist's boolean key as libcni does: absent is false, and a
// JSON true or false or a string "true" or "false" in any case is accepted.
func flag(m map[string]json.RawMessage, key string) (bool, error) {
	raw, ok := m[key]
	if !ok {
		return false, nil
	}
	var v any
	_ = json.Unmarshal(raw, &v) // raw is one value of a decoded object
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		switch strings.ToLower(v) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("%s: %s is neither true nor false", key, raw)
}
