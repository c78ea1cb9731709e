package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/polynet-cni/polynet/internal/jsoncmp"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// sameConf compares decoded configurations: every field, with JSON values
// (delegates, runtimeConfig, prevResult) compared as JSON text without
// insignificant white space, and an empty list or map the same as none.
var sameConf = cmp.Options{
	jsoncmp.Equivalent,
	cmpopts.IgnoreFields(DaemonConf{}, "Raw"),
}

// pluginSeeds are plugin configurations as upstream's installers and the
// runtime write them, and broken ones.
var pluginSeeds = []string{
	minimal,
	`{"clusterNetwork":"n"}`,
	`{"clusterNetwork":"n","globalNamespaces":"a, b","apiTimeout":"1s","logOptions":{"maxSize":1}}`,
	`{"delegates":[{"plugins":[{"type":"ptp"}]}],"logLevel":"DEBUG","capabilities":{"a":true}}`,
	`{"delegates":[{}]}`,
	`{"logOptions":{"maxAge":1.5}}`,
	`{"apiTimeout":10}`,
	`[]`,
	`null`,
	`{"a":`,
	``,
	`{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus","kubeconfig":"/etc/cni/net.d/multus.d/multus.kubeconfig",` +
		`"confDir":"/etc/cni/multus/net.d","cniDir":"/var/lib/cni/multus","binDir":"/opt/cni/bin:/opt/multus/bin",` +
		`"logFile":"/var/log/multus.log","logLevel":"debug","logOptions":{"maxAge":5,"maxSize":100,"maxBackups":5,"compress":true},` +
		`"capabilities":{"portMappings":true,"bandwidth":true},"readinessindicatorfile":"/run/flannel/subnet.env",` +
		`"namespaceIsolation":true,"globalNamespaces":"default,infra","systemNamespaces":["kube-system"],` +
		`"clusterNetwork":"flannel","defaultNetworks":["sidecar"],"multusNamespace":"kube-system"}`,
	`{"cniVersion":"1.1.0","name":"multus-cni-network","type":"multus-shim","socketDir":"/run/multus/","daemonSocketDir":"/run/multus/",` +
		`"delegates":[{"cniVersion":"1.1.0","name":"k8s-pod-network","plugins":[{"type":"calico","ipam":{"type":"calico-ipam"}},` +
		`{"type":"portmap","snat":true,"capabilities":{"portMappings":true}}]}],"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80}]},` +
		`"cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}],"prevResult":{"cniVersion":"1.1.0"}}`,
	`{"clusterNetwork":"n","cni.dev/valid-attachments":[],"cni.dev/attachments":[{"containerID":"c1","ifname":"eth0"}]}`,
	`{"clusterNetwork":"n","ClusterNetwork":"m","LOGLEVEL":"Verbose","globalNamespaces":[" a ",""]}`,
}

// FuzzParsePlugin reads whatever the runtime gives the plugin on stdin.
// Properties: ParsePlugin never panics; a refusal is a *FieldError alone; an
// accepted configuration keeps the invariants ParsePlugin documents; parsing is
// deterministic; and it is idempotent: the configuration encoded again (as
// json.Marshal writes it, with our MarshalJSON methods) parses to the same
// configuration, and gives GC the same valid attachments.
func FuzzParsePlugin(f *testing.F) {
	for _, s := range pluginSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParsePlugin(data)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FieldError", err, err)
			}
			if c != nil {
				t.Fatalf("error %v with a configuration", err)
			}
			return
		}
		if !slices.Contains(cniVersions, c.CNIVersion) {
			t.Errorf("accepted cniVersion %q", c.CNIVersion)
		}
		if c.ClusterNetwork == "" && len(c.Delegates) == 0 {
			t.Errorf("accepted a configuration without clusterNetwork or delegates")
		}
		if len(c.GlobalNamespaces) == 0 {
			t.Errorf("accepted a configuration without globalNamespaces")
		}
		if !slices.Contains(logLevels, c.LogLevel) {
			t.Errorf("accepted logLevel %q", c.LogLevel)
		}
		if c.ClusterNetwork != "" && c.Delegates != nil {
			t.Errorf("kept delegates beside clusterNetwork %q", c.ClusterNetwork)
		}
		again, err := ParsePlugin(data)
		if err != nil || !cmp.Equal(c, again) {
			t.Fatalf("ParsePlugin is not deterministic: %v, %s", err, cmp.Diff(c, again))
		}
		encoded, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("an accepted configuration does not encode: %v", err)
		}
		back, err := ParsePlugin(encoded)
		if err != nil {
			t.Fatalf("an accepted configuration, encoded again, is refused: %v\n%s", err, encoded)
		}
		if diff := cmp.Diff(c, back, sameConf); diff != "" {
			t.Fatalf("ParsePlugin(encode(c)) differs from c (-c +again):\n%s\nencoded: %s", diff, encoded)
		}
		// An empty cni.dev/valid-attachments ("none is valid") is dropped by
		// its omitempty, so encoding it is lossy when the earlier key is set
		// too. Nothing encodes a PluginConf today; libcni writes both keys alike.
		if c.ValidAttachments != nil && len(c.ValidAttachments) == 0 && len(c.LegacyValidAttachments) > 0 {
			return
		}
		if diff := cmp.Diff(c.Valid(), back.Valid(), cmpopts.EquateEmpty()); diff != "" || (c.Valid() == nil) != (back.Valid() == nil) {
			t.Fatalf("valid attachments changed by encoding (-c +again):\n%s\nencoded: %s", diff, encoded)
		}
	})
}

// fuzzDaemonMinimal is the smallest daemon-config.json ParseDaemon accepts.
const fuzzDaemonMinimal = `{"cniVersion":"1.1.0","multusAutoconfigDir":"/host/etc/cni/net.d"}`

// FuzzParseDaemon reads whatever daemon-config.json holds. Properties:
// ParseDaemon never panics; a refusal is a *FieldError naming the daemon
// config, alone; an accepted one keeps the bounds validateDaemon promises and
// is idempotent like the plugin configuration (Raw aside: it is the document
// as written).
func FuzzParseDaemon(f *testing.F) {
	for _, s := range []string{
		fuzzDaemonMinimal,
		`{"chrootDir":"/hostroot","cniVersion":"0.3.1","logLevel":"verbose","logToStderr":true,
		"cniConfigDir":"/host/etc/cni/net.d","multusAutoconfigDir":"/host/etc/cni/net.d","multusConfigFile":"auto",
		"socketDir":"/host/run/multus/","metricsPort":9091,"enablePprof":true,"connectionLimit":1,
		"forceCNIVersion":true,"overrideNetworkName":true,"multusMasterCNI":"10-calico.conflist",
		"readinessindicatorfile":"/host/run/ready","namespaceIsolation":true,"globalNamespaces":"default,infra",
		"perNodeCertificate":{"enabled":true,"bootstrapKubeconfig":"/var/lib/kubelet/kubeconfig","certDir":"/var/lib/multus/certs","certDuration":"24h"}}`,
		`{"multusConfigFile":"/etc/cni/multus/00-multus.conf","maxInFlight":4,"maxRequestBytes":2048,"requestTimeout":"30s","kubeconfig":"/k"}`,
		`{"metricsPort":0}`, `{"maxRequestBytes":1e3}`, `{"requestTimeout":"-1s"}`, `{"socketDir":"run"}`, `[]`, `null`, ``, `{"a":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseDaemon(data)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Doc != "daemon config" || c != nil {
				t.Fatalf("refused with %v (%T) and %+v; want a *FieldError of the daemon config alone", err, err, c)
			}
			return
		}
		if c.MaxInFlight < 1 || c.MaxRequestBytes < 1024 || c.RequestTimeout.Duration <= 0 || c.ShutdownTimeout.Duration <= 0 ||
			c.CacheSyncTimeout.Duration <= 0 || !slices.Contains(logLevels, c.LogLevel) || c.Raw == nil {
			t.Fatalf("accepted a configuration out of its bounds: %+v", c)
		}
		encoded, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("an accepted configuration does not encode: %v", err)
		}
		back, err := ParseDaemon(encoded)
		if err != nil {
			t.Fatalf("an accepted configuration, encoded again, is refused: %v\n%s", err, encoded)
		}
		if diff := cmp.Diff(c, back, sameConf); diff != "" {
			t.Fatalf("ParseDaemon(encode(c)) differs from c (-c +again):\n%s\nencoded: %s", diff, encoded)
		}
	})
}

// FuzzOverlay lays a daemon configuration over a request's plugin
// configuration. Properties: Overlay never panics and refuses only a request
// that is not a JSON object; the result keeps the request's cniVersion, name
// and type; and every plugin key the daemon sets wins: the plugin
// configuration parsed from the result has, for that key, the value the daemon
// wrote, however the request spelled the key.
func FuzzOverlay(f *testing.F) {
	f.Add([]byte(`{"cniVersion":"1.1.0","multusAutoconfigDir":"/host/etc/cni/net.d","confDir":"/node/net.d","namespaceIsolation":true,"logLevel":"debug"}`),
		[]byte(`{"cniVersion":"1.0.0","name":"multus-cni-network","type":"multus-shim","confDir":"/etc/cni/multus/net.d","clusterNetwork":"n"}`))
	f.Add([]byte(`{"multusConfigFile":"/etc/00-multus.conf","cniDir":"/var/lib/cni/polynet","readinessindicatorfile":"/run/ready"}`),
		[]byte(`{"name":"m","type":"multus-shim","cniDir":"/var/lib/cni/multus","readinessindicatorfile":"/other","delegates":[{"type":"ptp"}]}`))
	f.Add([]byte(fuzzDaemonMinimal), []byte(`null`))
	f.Fuzz(func(t *testing.T, daemon, request []byte) {
		d, err := ParseDaemon(daemon)
		if err != nil {
			return
		}
		out, err := d.Overlay(request)
		var req map[string]json.RawMessage
		if (json.Unmarshal(request, &req) != nil || req == nil) != (err != nil) {
			t.Fatalf("Overlay(%q) error %v; want one exactly when the request is not a JSON object", request, err)
		}
		if err != nil {
			return
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("Overlay gave %q, not a JSON object: %v", out, err)
		}
		for _, k := range []string{"cniVersion", "name", "type"} {
			if diff := cmp.Diff(jsonValue(req[k]), jsonValue(got[k])); diff != "" {
				t.Fatalf("Overlay changed the request's %s from %s to %s", k, req[k], got[k])
			}
		}
		checkOverlayWins(t, d, out)
	})
}

// checkOverlayWins fails unless every plugin key of the daemon decides its
// field of the plugin configuration parsed from out.
func checkOverlayWins(t *testing.T, d *DaemonConf, out []byte) {
	t.Helper()
	merged, err := ParsePlugin(out)
	if err != nil {
		return // the daemon or the request holds a plugin value ParsePlugin refuses
	}
	root := reflect.TypeFor[PluginConf]()
	for k, raw := range d.Raw {
		f, ok := fieldFor(root, k)
		if !ok || slices.Contains(daemonOnly, k) || (k == "readinessindicatorfile" && d.MultusConfigFile == AutoConfig) ||
			spelledTwice(d.Raw, k) || slices.Contains([]string{"delegates", "clusterNetwork", "logLevel", "globalNamespaces"}, jsonName(f)) {
			continue // normalize reads these together
		}
		alone := defaults()
		if decodeKey(k, raw, &alone) != nil {
			continue
		}
		want := reflect.ValueOf(alone).FieldByIndex(f.Index).Interface()
		got := reflect.ValueOf(*merged).FieldByIndex(f.Index).Interface()
		if diff := cmp.Diff(want, got, sameConf); diff != "" {
			t.Fatalf("the daemon's %q does not win (-daemon +merged):\n%s\nmerged: %s", k, diff, out)
		}
	}
}

// jsonValue is the value raw holds, numbers as their digits; nil for none.
func jsonValue(raw json.RawMessage) any {
	if raw == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return "invalid:" + string(raw)
	}
	return v
}

// spelledTwice reports whether m holds key k in more than one spelling.
func spelledTwice(m map[string]json.RawMessage, k string) bool {
	n := 0
	for key := range m {
		if strings.EqualFold(key, k) {
			n++
		}
	}
	return n > 1
}
