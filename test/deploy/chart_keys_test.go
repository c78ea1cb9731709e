package deploy

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/setup/thinentry"
	"github.com/polynet-cni/polynet/test/testbed"
)

// chartThinFlags are thin_entrypoint's flags by their key under thin in
// values.yaml: a value other than the binary's default, and the option it
// sets.
var chartThinFlags = []struct {
	key   string
	other any
	get   func(*thinentry.Options) any
}{
	{"cniBinDir", "/host/opt/cni/bin2", func(o *thinentry.Options) any { return o.CNIBinDir }},
	{"cniConfDir", "/host/etc/cni/net2.d", func(o *thinentry.Options) any { return o.CNIConfDir }},
	{"cniVersion", "1.0.0", func(o *thinentry.Options) any { return o.CNIVersion }},
	{"multusConfFile", "/tmp/multus-conf/70-multus.conf", func(o *thinentry.Options) any { return o.MultusConfFile }},
	{"multusBinFile", "/usr/src/multus-cni/bin/multus2", func(o *thinentry.Options) any { return o.MultusBinFile }},
	{"multusCniConfDir", "/host/etc/cni/multus/net2.d", func(o *thinentry.Options) any { return o.MultusCNIConfDir }},
	{"skipMultusBinaryCopy", true, func(o *thinentry.Options) any { return o.SkipBinaryCopy }},
	{"multusKubeconfigFileHost", "/etc/cni/net.d/multus.d/other.kubeconfig", func(o *thinentry.Options) any { return o.KubeconfigHost }},
	{"multusMasterCniFileName", "10-flannel.conflist", func(o *thinentry.Options) any { return o.MasterCNIFileName }},
	{"namespaceIsolation", true, func(o *thinentry.Options) any { return o.NamespaceIsolation }},
	{"globalNamespaces", "default,shared", func(o *thinentry.Options) any { return o.GlobalNamespaces }},
	{"multusAutoconfigDir", "/host/etc/cni/net3.d", func(o *thinentry.Options) any { return o.AutoconfigDir }},
	{"multusLogToStderr", false, func(o *thinentry.Options) any { return o.LogToStderr }},
	{"multusLogLevel", "debug", func(o *thinentry.Options) any { return o.LogLevel }},
	{"multusLogFile", "/var/log/multus.log", func(o *thinentry.Options) any { return o.LogFile }},
	{"overrideNetworkName", true, func(o *thinentry.Options) any { return o.OverrideNetworkName }},
	{"cleanupConfigOnExit", true, func(o *thinentry.Options) any { return o.CleanupConfigOnExit }},
	{"skipConfigWatch", true, func(o *thinentry.Options) any { return o.SkipConfigWatch }},
	{"renameConfFile", true, func(o *thinentry.Options) any { return o.RenameConfFile }},
	{"readinessIndicatorFile", "/run/flannel/subnet.env", func(o *thinentry.Options) any { return o.ReadinessIndicator }},
	{"additionalBinDir", "/opt/multus/bin", func(o *thinentry.Options) any { return o.AdditionalBinDir }},
	{"skipTlsVerify", true, func(o *thinentry.Options) any { return o.SkipTLSVerify }},
	{"forceCniVersion", true, func(o *thinentry.Options) any { return o.ForceCNIVersion }},
	{"serviceAccountDir", "/var/run/secrets/polynet", func(o *thinentry.Options) any { return o.ServiceAccountDir }},
}

// TestChartThinFlags: values.yaml has a key for every flag of thin_entrypoint,
// set to the binary's own default; each key, set otherwise, reaches the binary
// as the option it names (parsed by the binary's own parser), and the probes
// read the same configuration and kubeconfig as the container writes.
func TestChartThinFlags(t *testing.T) {
	testbed.Require(t)
	defaults, err := thinentry.Parse(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	thin := chartDefaultValues(t)["thin"].(map[string]any)
	var keys []string
	for k := range thin {
		if k != "extraArgs" && k != "cniConf" {
			keys = append(keys, k)
		}
	}
	var known []string
	other := map[string]any{"mode": "thin"}
	set := map[string]any{}
	for _, f := range chartThinFlags {
		known = append(known, f.key)
		if got, want := fmt.Sprint(thin[f.key]), fmt.Sprint(f.get(defaults)); got != want {
			t.Errorf("values.yaml thin.%s is %q, thin_entrypoint's default is %q", f.key, got, want)
		}
		set[f.key] = f.other
	}
	other["thin"] = set
	slices.Sort(keys)
	slices.Sort(known)
	if diff := cmp.Diff(known, keys); diff != "" {
		t.Errorf("values.yaml thin keys (-thin_entrypoint's flags +values.yaml):\n%s", diff)
	}

	values, err := yaml.Marshal(other)
	if err != nil {
		t.Fatal(err)
	}
	objs := chartSplit(t, "helm template", testbed.HelmTemplate(t, chartDir(t), "polynet", "kube-system",
		"-f", chartWriteFile(t, "values.yaml", string(values))))
	_, o := chartThinArgs(t, objs, "kube-system")
	for _, f := range chartThinFlags {
		if got := f.get(o); fmt.Sprint(got) != fmt.Sprint(f.other) {
			t.Errorf("thin.%s=%v reaches thin_entrypoint as %v", f.key, f.other, got)
		}
	}
}

// TestChartDaemonConfigKeys: daemonConfig in values.yaml has a key for every
// key of daemon-config.json and every plugin-configuration key the daemon lays
// over requests, and no other.
func TestChartDaemonConfigKeys(t *testing.T) {
	// Plugin keys that are not settings: the request's identity, the runtime's
	// and a chained plugin's input, and inline delegates.
	notSettings := []string{"name", "type", "delegates", "capabilities", "runtimeConfig", "prevResult",
		"cni.dev/valid-attachments", "cni.dev/attachments"}
	want := map[string]bool{}
	for _, typ := range []reflect.Type{reflect.TypeFor[config.DaemonConf](), reflect.TypeFor[config.PluginConf]()} {
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name != "" && name != "-" && !slices.Contains(notSettings, name) {
				want[name] = true
			}
		}
	}
	got := map[string]bool{}
	for k := range chartDefaultValues(t)["daemonConfig"].(map[string]any) {
		got[k] = true
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("daemonConfig keys (-config package +values.yaml):\n%s", diff)
	}
}

// chartDefaultValues reads the chart's values.yaml.
func chartDefaultValues(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(t), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	return values
}
