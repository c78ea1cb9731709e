package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/version"
)

// cniVersions are the CNI spec versions a configuration may declare: those the
// CNI library speaks, which every binary answers VERSION with (package plugin).
var cniVersions = version.All.SupportedVersions()

// allowedCNIVersions is the FieldError text of a cniVersion not in cniVersions.
var allowedCNIVersions = "one of " + strings.Join(cniVersions, ", ")

// logLevels are the accepted values of logLevel, in upstream's order.
var logLevels = []string{LevelDebug, LevelVerbose, LevelError, LevelPanic}

// dns1123Label is the syntax of a Kubernetes namespace name.
var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Allowed texts shared by several checks.
const (
	allowedLabel    = "a DNS-1123 label (at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit)"
	allowedAbsPath  = "an absolute path"
	allowedDelegate = `a CNI configuration with "type", or a configuration list with "plugins" whose first plugin has "type"`
)

// validate checks a decoded, normalized configuration; the first problem found
// is returned as a *FieldError.
func validate(c *PluginConf) error {
	checks := []func(*PluginConf) error{
		validateVersion,
		validateNetworks,
		validateNamespaces,
		validatePaths,
		validateLogging,
		validateDurations,
		validateLimits,
	}
	for _, check := range checks {
		if err := check(c); err != nil {
			return err
		}
	}
	return nil
}

// validateVersion checks cniVersion against the CNI spec versions we speak.
func validateVersion(c *PluginConf) error {
	if !slices.Contains(cniVersions, c.CNIVersion) {
		return &FieldError{Field: "cniVersion", Value: shorten(c.CNIVersion), Allowed: allowedCNIVersions}
	}
	return nil
}

// validateNetworks checks that a cluster network is given and well formed.
func validateNetworks(c *PluginConf) error {
	if c.ClusterNetwork == "" && len(c.Delegates) == 0 {
		return &FieldError{Field: "clusterNetwork", Allowed: "a cluster network (a NAD name, a configuration name, folder or file), or a non-empty delegates list"}
	}
	for i, d := range c.Delegates {
		if _, err := DelegateIsList(d); err != nil {
			return &FieldError{Field: fmt.Sprintf("delegates[%d]", i), Value: shortenJSON(d), Allowed: allowedDelegate}
		}
	}
	for i, n := range c.DefaultNetworks {
		if n == "" {
			return &FieldError{Field: fmt.Sprintf("defaultNetworks[%d]", i), Allowed: "a network name"}
		}
	}
	return nil
}

// validateNamespaces checks that every namespace name could exist.
func validateNamespaces(c *PluginConf) error {
	if !isLabel(c.MultusNamespace) {
		return &FieldError{Field: "multusNamespace", Value: shorten(c.MultusNamespace), Allowed: allowedLabel}
	}
	lists := []struct {
		key   string
		names []string
	}{
		{"systemNamespaces", c.SystemNamespaces},
		{"globalNamespaces", c.GlobalNamespaces},
	}
	for _, l := range lists {
		for i, n := range l.names {
			if !isLabel(n) {
				return &FieldError{Field: fmt.Sprintf("%s[%d]", l.key, i), Value: shorten(n), Allowed: allowedLabel}
			}
		}
	}
	return nil
}

// isLabel reports whether s is a DNS-1123 label, the syntax of a namespace name.
func isLabel(s string) bool {
	return len(s) <= 63 && dns1123Label.MatchString(s)
}

// validatePaths checks that paths are absolute: the plugin runs with an
// unpredictable working directory, so a relative path means nothing.
func validatePaths(c *PluginConf) error {
	for _, dir := range strings.Split(c.BinDir, ":") {
		if dir != "" && !filepath.IsAbs(dir) {
			return &FieldError{Field: "binDir", Value: shorten(dir), Allowed: "absolute paths separated by ':'"}
		}
	}
	required := []struct{ key, path string }{
		{"cniDir", c.CNIDir},
		{"confDir", c.ConfDir},
		{"deviceInfoDir", c.DeviceInfoDir},
		{"podResourcesSocket", c.PodResourcesSocket},
		{"kubeletCheckpoint", c.KubeletCheckpoint},
	}
	for _, p := range required {
		if !filepath.IsAbs(p.path) {
			return &FieldError{Field: p.key, Value: shorten(p.path), Allowed: allowedAbsPath}
		}
	}
	optional := []struct{ key, path string }{
		{"kubeconfig", c.Kubeconfig},
		{"logFile", c.LogFile},
		{"readinessindicatorfile", c.ReadinessIndicatorFile},
	}
	for _, p := range optional {
		if p.path != "" && !filepath.IsAbs(p.path) {
			return &FieldError{Field: p.key, Value: shorten(p.path), Allowed: allowedAbsPath + ", or empty"}
		}
	}
	return nil
}

// validateLogging checks the log level and the rotation limits.
func validateLogging(c *PluginConf) error {
	if !slices.Contains(logLevels, c.LogLevel) {
		return &FieldError{Field: "logLevel", Value: shorten(c.LogLevel), Allowed: "one of " + strings.Join(logLevels, ", ")}
	}
	o := c.LogOptions
	limits := []struct {
		key string
		v   *int
		min int
	}{
		{"logOptions.maxAge", o.MaxAge, 0},
		{"logOptions.maxSize", o.MaxSize, 1},
		{"logOptions.maxBackups", o.MaxBackups, 0},
	}
	for _, l := range limits {
		if l.v != nil && *l.v < l.min {
			return &FieldError{Field: l.key, Value: strconv.Itoa(*l.v), Allowed: fmt.Sprintf("an integer of at least %d", l.min)}
		}
	}
	return nil
}

// validateDurations checks that every timeout allows some time.
func validateDurations(c *PluginConf) error {
	durations := []struct {
		key string
		d   Duration
	}{
		{"apiTimeout", c.APITimeout},
		{"apiRetryBudget", c.APIRetryBudget},
		{"readinessIndicatorTimeout", c.ReadinessIndicatorTimeout},
	}
	for _, d := range durations {
		if d.d.Duration <= 0 {
			return &FieldError{Field: d.key, Value: d.d.String(), Allowed: `a positive duration such as "10s"`}
		}
	}
	if c.GCGracePeriod.Duration < 0 {
		return &FieldError{Field: "gcGracePeriod", Value: c.GCGracePeriod.String(), Allowed: `a duration of at least "0s"`}
	}
	return nil
}

// validateLimits checks the bounds of what one pod may ask for.
func validateLimits(c *PluginConf) error {
	if c.MaxNetworksPerPod < 1 {
		return &FieldError{Field: "maxNetworksPerPod", Value: strconv.Itoa(c.MaxNetworksPerPod), Allowed: "a positive integer"}
	}
	return nil
}

// DelegateIsList reports whether a CNI configuration (an element of "delegates",
// a NAD's config, or a file in confDir) is a configuration list (it has
// "plugins") rather than a single configuration (it has "type"). A non-empty
// "type" wins over "plugins", as in upstream. It returns an error when the
// configuration is neither, or when a list's first plugin has no "type", because
// such a configuration would only fail later, inside a delegate call.
func DelegateIsList(raw []byte) (bool, error) {
	var conf struct {
		Type    string            `json:"type"`
		Plugins []json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &conf); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "type" {
			return false, fmt.Errorf(`cni config: "type" is a JSON %s, not a string`, te.Value)
		}
		if errors.As(err, &te) && te.Field == "plugins" {
			return false, fmt.Errorf(`cni config: "plugins" is a JSON %s, not an array`, te.Value)
		}
		return false, errors.New("cni config is not a JSON object")
	}
	if conf.Type != "" {
		return false, ValidatePluginType(conf.Type)
	}
	if len(conf.Plugins) == 0 {
		return false, errors.New(`cni config has neither "type" nor a non-empty "plugins"`)
	}
	for i, raw := range conf.Plugins {
		var p struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(raw, &p); err != nil || p.Type == "" {
			return false, fmt.Errorf(`cni config list: plugin %d has no "type"`, i)
		}
		if err := ValidatePluginType(p.Type); err != nil {
			return false, fmt.Errorf("cni config list: plugin %d: %w", i, err)
		}
	}
	return true, nil
}

// ValidatePluginType refuses a plugin type that is not a plain file name. NADs are
// written by namespace users, and a type such as "../../sbin/reboot" must never
// reach exec (CVE-2021-20206): only binaries in binDir and CNI_PATH run.
func ValidatePluginType(t string) error {
	switch {
	case t == "":
		return errors.New("plugin type is empty")
	case strings.ContainsAny(t, "/\\\x00") || t == "." || t == "..":
		return fmt.Errorf("plugin type %q is not a plain file name: only binaries in binDir and CNI_PATH run", t)
	}
	return nil
}

// KnownCNIVersion reports whether v is a CNI specification version we speak.
func KnownCNIVersion(v string) bool { return slices.Contains(cniVersions, v) }

// KnownLogLevel reports whether l is an accepted logLevel.
func KnownLogLevel(l string) bool { return slices.Contains(logLevels, l) }
