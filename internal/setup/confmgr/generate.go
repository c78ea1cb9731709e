package confmgr

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/version"

	"github.com/polynet-cni/polynet/internal/cniconf"
	"github.com/polynet-cni/polynet/internal/config"
)

const (
	// DefaultNetworkName is the generated configuration's network name unless
	// overrideNetworkName asks for the primary's.
	DefaultNetworkName = "multus-cni-network"
	// ShimType is the plugin type the runtime is made to call.
	ShimType = "multus-shim"
	// ownPrefix starts the name of every file we generate; such files are never
	// taken as the primary configuration.
	ownPrefix = "00-multus"
)

// copiedKeys are the daemon configuration keys the shim (or the daemon, when it
// lays the request over its own configuration) reads from the plugin
// configuration; they are copied verbatim. readinessindicatorfile is left out
// on purpose: the manager watches the indicator itself and removes the file
// while it is missing, so the shim must not wait on it a second time.
//
// daemonSocketDir is copied only when the daemon configuration names it, as
// upstream does: socketDir is where the daemon sees the socket inside its
// container (upstream's manifests say /host/run/multus/), which is not where
// the shim, running on the host, finds it (/run/multus/, the shim's default).
var copiedKeys = []string{
	"logFile", "logLevel", "logToStderr", "logOptions", "binDir", "cniDir", "confDir",
	"namespaceIsolation", "globalNamespaces", "auxiliaryCNIChainName", "multusNamespace",
	"systemNamespaces", "defaultNetworks", "retryDeleteOnError", "daemonSocketDir",
}

// thinKeys are copied into a thin plugin's configuration besides copiedKeys:
// the thin plugin waits for the readiness indicator itself, since nothing
// watches it on its behalf.
var thinKeys = []string{"readinessindicatorfile"}

// ThinType is the thin plugin's type.
const ThinType = "multus"

// Thin makes the manager generate the thin plugin's configuration instead of
// the shim's: type multus, the primary carried inline as its only delegate
// (the plugin runs on the host, where the primary's path inside an installer's
// container means nothing, and upstream's thin configuration does the same),
// and the kubeconfig the plugin reads on every call.
type Thin struct {
	// Kubeconfig is the kubeconfig's path as the plugin on the host sees it.
	Kubeconfig string
}

// Generate returns the file name and content that would be written for the
// primary configuration primary, read from primaryPath: the shim's
// configuration, or the thin plugin's when thin is not nil. It refuses a
// primary that is itself Multus (self-delegation loops forever, upstream
// #1108) and, unless ForceCNIVersion is set (the caller then rewrites the
// primary first), a primary whose cniVersion ours cannot be used with. An
// empty cniVersion takes the primary's (the thin installer's default).
func Generate(d *config.DaemonConf, thin *Thin, primaryPath string, primary []byte) (name string, content []byte, err error) {
	if d == nil {
		return "", nil, errors.New("confmgr: no daemon configuration")
	}
	obj, err := cniconf.Decode(primary)
	if err != nil {
		return "", nil, fmt.Errorf("primary CNI configuration %s: %w", primaryPath, err)
	}
	if typ, ok := selfDelegating(obj); ok {
		return "", nil, fmt.Errorf("refusing primary CNI configuration %s: its type is %q, so Multus would delegate to itself forever", primaryPath, typ)
	}
	cniVersion := d.CNIVersion
	if cniVersion == "" {
		if cniVersion = cniconf.String(obj, "cniVersion"); cniVersion == "" {
			return "", nil, fmt.Errorf("primary CNI configuration %s has no cniVersion to follow; set ours explicitly", primaryPath)
		}
	}
	if name, err = confName(cniVersion); err != nil {
		return "", nil, err
	}
	if !d.ForceCNIVersion {
		if err := checkVersions(cniVersion, primaryPath, cniconf.String(obj, "cniVersion")); err != nil {
			return "", nil, err
		}
	}
	abs, err := filepath.Abs(primaryPath)
	if err != nil {
		return "", nil, fmt.Errorf("primary CNI configuration %s: %w", primaryPath, err)
	}
	netName := DefaultNetworkName
	if n := cniconf.String(obj, "name"); d.OverrideNetworkName && n != "" {
		netName = n
	}
	plugin := shimObject(d, abs, obj)
	if thin != nil {
		plugin = thinObject(d, thin, primary, obj)
	}
	var top map[string]any
	if strings.HasSuffix(name, ".conflist") {
		top = map[string]any{"cniVersion": cniVersion, "name": netName, "plugins": []any{plugin}}
	} else {
		top = plugin
		top["cniVersion"], top["name"] = cniVersion, netName
	}
	// json.Marshal sorts map keys, so equal inputs give equal bytes and the
	// file is only rewritten when something really changed.
	content, err = json.MarshalIndent(top, "", "  ")
	if err != nil {
		return "", nil, fmt.Errorf("confmgr: encoding the configuration: %w", err)
	}
	return name, append(content, '\n'), nil
}

// shimObject is the multus-shim plugin configuration without its cniVersion and
// name, which sit at the top of a .conf but of the list in a .conflist.
func shimObject(d *config.DaemonConf, clusterNetwork string, primary map[string]json.RawMessage) map[string]any {
	shim := map[string]any{"type": ShimType, "clusterNetwork": clusterNetwork}
	if caps := capabilities(primary); len(caps) > 0 {
		shim["capabilities"] = caps
	}
	for _, k := range copiedKeys {
		if v, ok := d.Raw[k]; ok {
			shim[k] = v
		}
	}
	return shim
}

// thinObject is the thin plugin's configuration without its cniVersion and
// name: the primary inline as its delegate, every value as on disk (numbers
// keep their digits; only white space is re-indented).
func thinObject(d *config.DaemonConf, thin *Thin, primary []byte, obj map[string]json.RawMessage) map[string]any {
	p := map[string]any{"type": ThinType, "delegates": []json.RawMessage{json.RawMessage(primary)}}
	if thin.Kubeconfig != "" {
		p["kubeconfig"] = thin.Kubeconfig
	}
	if caps := capabilities(obj); len(caps) > 0 {
		p["capabilities"] = caps
	}
	for _, k := range append(copiedKeys, thinKeys...) {
		if v, ok := d.Raw[k]; ok {
			p[k] = v
		}
	}
	return p
}

// capabilities is the union of the capabilities the primary enables, at its top
// level or in any plugin of its list: the runtime only passes capability
// arguments (port mappings, bandwidth...) to a plugin that declares them, and
// the shim must receive them to hand them on to the cluster network. Only true
// values count; a capability declared false is not one the primary takes.
func capabilities(primary map[string]json.RawMessage) map[string]bool {
	caps := map[string]bool{}
	add := func(raw json.RawMessage) {
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil {
			return
		}
		for k, v := range m {
			if v == true {
				caps[k] = true
			}
		}
	}
	add(primary["capabilities"])
	for _, p := range plugins(primary) {
		add(p["capabilities"])
	}
	return caps
}

// confName is the generated file's name: a .conflist from CNI 1.0.0 on, where
// the runtime no longer accepts a single-plugin .conf, and a .conf before.
func confName(cniVersion string) (string, error) {
	list, err := atLeast(cniVersion, "1.0.0")
	if err != nil {
		return "", fmt.Errorf("daemon cniVersion: %w", err)
	}
	if list {
		return ownPrefix + ".conflist", nil
	}
	return ownPrefix + ".conf", nil
}

// checkVersions refuses a primary older than 0.4.0 under a daemon at 0.4.0 or
// newer: the runtime would call the shim with the newer version (CHECK, prevResult
// in DEL) and the primary's plugins could not answer it.
func checkVersions(daemon, primaryPath, primary string) error {
	newer, err := atLeast(daemon, "0.4.0")
	if err != nil {
		return fmt.Errorf("daemon cniVersion: %w", err)
	}
	if !newer {
		return nil
	}
	if ok, err := atLeast(primary, "0.4.0"); err == nil && ok {
		return nil
	}
	shown := primary
	if shown == "" {
		shown = "(none)"
	}
	return fmt.Errorf("primary CNI configuration %s has cniVersion %s but the daemon's cniVersion %s needs 0.4.0 or newer: "+
		"lower the daemon's cniVersion, update the primary, or set forceCNIVersion", primaryPath, shown, daemon)
}

// atLeast reports whether the CNI version v is min or newer, by libcni's
// comparison. A missing minor or micro part counts as 0. An empty v, which
// libcni reads as 0.1.0 (a configuration that declares none), and negative
// parts, which libcni lets through, are not versions here: the value is written
// into the generated configuration.
func atLeast(v, min string) (bool, error) {
	major, minor, micro, err := version.ParseVersion(v)
	if v == "" || err != nil || major < 0 || minor < 0 || micro < 0 {
		return false, fmt.Errorf("%q is not a version such as 1.0.0", v)
	}
	return version.GreaterThanOrEqualTo(v, min)
}
