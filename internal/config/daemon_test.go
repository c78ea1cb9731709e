package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const daemonMinimal = `{"cniVersion":"1.1.0","multusAutoconfigDir":"/host/etc/cni/net.d"}`

// TestParseDaemonDefaults: upstream's defaults, and ours for the bounds.
func TestParseDaemonDefaults(t *testing.T) {
	c, err := ParseDaemon([]byte(daemonMinimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.SocketDir != "/run/multus/" || c.MultusConfigFile != "auto" || c.CNIConfigDir != "/etc/cni/net.d" ||
		c.MaxInFlight != 32 || c.MaxRequestBytes != 1<<20 || c.RequestTimeout.Duration != 3*time.Minute ||
		c.ShutdownTimeout.Duration != 10*time.Second || c.MetricsPort != nil || c.RemoveConfigOnShutdown ||
		c.CNIDir != DefaultCNIDir {
		t.Errorf("defaults: %+v", c)
	}
}

// TestParseDaemonAcceptsUpstreamKeys reads a daemon-config.json as upstream's
// manifests write it.
func TestParseDaemonAcceptsUpstreamKeys(t *testing.T) {
	upstream := `{"chrootDir":"/hostroot","cniVersion":"0.3.1","logLevel":"verbose","logToStderr":true,
		"cniConfigDir":"/host/etc/cni/net.d","multusAutoconfigDir":"/host/etc/cni/net.d","multusConfigFile":"auto",
		"socketDir":"/host/run/multus/","metricsPort":9091,"enablePprof":true,"connectionLimit":1,
		"forceCNIVersion":true,"overrideNetworkName":true,"multusMasterCNI":"10-calico.conflist",
		"readinessindicatorfile":"/host/run/ready","namespaceIsolation":true,"globalNamespaces":"default,infra",
		"perNodeCertificate":{"enabled":true,"bootstrapKubeconfig":"/var/lib/kubelet/kubeconfig","certDir":"/var/lib/multus/certs","certDuration":"24h"}}`
	c, err := ParseDaemon([]byte(upstream))
	if err != nil {
		t.Fatal(err)
	}
	if c.ChrootDir != "/hostroot" || *c.MetricsPort != 9091 || *c.ConnectionLimit != 1 || !c.PerNodeCertificate.Enabled ||
		c.PerNodeCertificate.CertDuration.Duration != 24*time.Hour {
		t.Errorf("decoded %+v", c)
	}
}

// TestParseDaemonPerNodeCertificate: certDuration defaults to upstream's 10m,
// and an empty bootstrapKubeconfig is accepted (the daemon's kubeconfig or its
// ServiceAccount bootstraps); a disabled setting is not checked, as upstream.
func TestParseDaemonPerNodeCertificate(t *testing.T) {
	for name, tt := range map[string]struct {
		doc  string
		want PerNodeCertificate
	}{
		"defaults": {`{"enabled":true,"certDir":"/c"}`, PerNodeCertificate{Enabled: true, CertDir: "/c", CertDuration: Duration{10 * time.Minute}}},
		"set": {`{"enabled":true,"certDir":"/c","bootstrapKubeconfig":"/k","certDuration":"1h"}`,
			PerNodeCertificate{Enabled: true, CertDir: "/c", BootstrapKubeconfig: "/k", CertDuration: Duration{time.Hour}}},
		"disabled": {`{"enabled":false,"certDir":"relative","certDuration":"1s"}`,
			PerNodeCertificate{CertDir: "relative", CertDuration: Duration{time.Second}}},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := ParseDaemon([]byte(`{"cniVersion":"1.1.0","multusAutoconfigDir":"/x","perNodeCertificate":` + tt.doc + `}`))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, *c.PerNodeCertificate); diff != "" {
				t.Errorf("perNodeCertificate (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseDaemonErrorsNameTheKey: a bad value stops start-up with the key named.
func TestParseDaemonErrorsNameTheKey(t *testing.T) {
	for key, doc := range map[string]string{
		"metricsPort":         `{"cniVersion":"1.1.0","multusAutoconfigDir":"/x","metricsPort":70000}`,
		"connectionLimit":     `{"cniVersion":"1.1.0","multusAutoconfigDir":"/x","connectionLimit":0}`,
		"multusAutoconfigDir": `{"cniVersion":"1.1.0"}`,
		"cniVersion":          `{"multusAutoconfigDir":"/x"}`,
		"multusConfigFile":    `{"multusConfigFile":"relative.conf"}`,
		"requestTimeout":      `{"cniVersion":"1.1.0","multusAutoconfigDir":"/x","requestTimeout":"soon"}`,
		"socketDir":           `{"cniVersion":"1.1.0","multusAutoconfigDir":"/x","socketDir":"run"}`,
		"cniDir":              `{"cniVersion":"1.1.0","multusAutoconfigDir":"/x","cniDir":"var/lib/cni"}`,
		"perNodeCertificate.certDir": `{"cniVersion":"1.1.0","multusAutoconfigDir":"/x",
			"perNodeCertificate":{"enabled":true,"bootstrapKubeconfig":"/k"}}`,
		"perNodeCertificate.bootstrapKubeconfig": `{"cniVersion":"1.1.0","multusAutoconfigDir":"/x",
			"perNodeCertificate":{"enabled":true,"bootstrapKubeconfig":"kubeconfig","certDir":"/c"}}`,
		"perNodeCertificate.certDuration": `{"cniVersion":"1.1.0","multusAutoconfigDir":"/x",
			"perNodeCertificate":{"enabled":true,"certDir":"/c","certDuration":"5m"}}`,
	} {
		_, err := ParseDaemon([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), `daemon config: field "`+key+`"`) {
			t.Errorf("%s: got %v, want an error naming the key", key, err)
		}
	}
}

// TestOverlay lays the node's plugin keys over a request, keeps the request's
// identity, never lays the daemon's own keys, and drops the readiness indicator
// when the daemon generates the configuration (it watches it itself).
func TestOverlay(t *testing.T) {
	c, err := ParseDaemon([]byte(`{"cniVersion":"0.3.1","multusAutoconfigDir":"/x","socketDir":"/run/m/",
		"confDir":"/node/confdir","namespaceIsolation":true,"readinessindicatorfile":"/r"}`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Overlay([]byte(`{"cniVersion":"1.1.0","name":"n","type":"multus-shim","confDir":"/shim","readinessindicatorfile":"/r2","delegates":[{"type":"bridge"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got["confDir"] != "/node/confdir" || got["namespaceIsolation"] != true || got["cniVersion"] != "1.1.0" || got["name"] != "n" {
		t.Errorf("overlay %s", out)
	}
	for _, k := range []string{"socketDir", "multusAutoconfigDir", "readinessindicatorfile"} {
		if _, ok := got[k]; ok {
			t.Errorf("overlay %s carries %s", out, k)
		}
	}
}

// TestParseDaemonCNIDir: the daemon reads cniDir, the plugin key it lays over
// every request, as the plugin configuration does, and still lays it over.
func TestParseDaemonCNIDir(t *testing.T) {
	c, err := ParseDaemon([]byte(`{"cniVersion":"1.1.0","multusAutoconfigDir":"/x","cniDir":"/node/cni"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.CNIDir != "/node/cni" {
		t.Errorf("CNIDir = %q, want /node/cni", c.CNIDir)
	}
	merged, err := c.Overlay([]byte(`{"cniVersion":"1.0.0","name":"n","type":"multus-shim","clusterNetwork":"x","cniDir":"/shim/cni"}`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePlugin(merged)
	if err != nil {
		t.Fatal(err)
	}
	if p.CNIDir != c.CNIDir {
		t.Errorf("request's cniDir after Overlay = %q, want the daemon's %q", p.CNIDir, c.CNIDir)
	}
}

// TestParseDaemonLogging: the daemon reads upstream's logging keys, logOptions
// included, with the plugin configuration's rules for them.
func TestParseDaemonLogging(t *testing.T) {
	tests := []struct {
		name    string
		keys    string
		want    []any // logLevel, logFile, logToStderr, then logOptions resolved
		wantErr string
	}{
		{"absent", ``, []any{"error", "", false, 5, 100, 5, true}, ""},
		{"all set", `,"logLevel":"DEBUG","logFile":"/var/log/multus.log","logToStderr":true,
			"logOptions":{"maxAge":1,"maxSize":2,"maxBackups":3,"compress":false}}`,
			[]any{"debug", "/var/log/multus.log", true, 1, 2, 3, false}, ""},
		{"some options", `,"logOptions":{"maxSize":7}}`, []any{"error", "", false, 5, 7, 5, true}, ""},
		{"no limits", `,"logOptions":{"maxAge":0,"maxBackups":0}}`, []any{"error", "", false, 0, 100, 0, true}, ""},
		{"maxSize 0", `,"logOptions":{"maxSize":0}}`, nil, `field "logOptions.maxSize": "0" is not allowed`},
		{"negative maxAge", `,"logOptions":{"maxAge":-1}}`, nil, `field "logOptions.maxAge": "-1" is not allowed`},
		{"not an object", `,"logOptions":5}`, nil, `field "logOptions"`},
		{"unknown level", `,"logLevel":"loud"}`, nil, `field "logLevel": "loud" is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.TrimSuffix(daemonMinimal, "}") + tt.keys
			if tt.keys == "" {
				doc = daemonMinimal
			}
			c, err := ParseDaemon([]byte(doc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), "daemon config: "+tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			maxAge, maxSize, maxBackups, compress := c.LogOptions.Resolved()
			got := []any{c.LogLevel, c.LogFile, c.LogToStderr, maxAge, maxSize, maxBackups, compress}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("logging keys (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseDaemonConnectionLimit: the socket's connections are bounded by
// default, at ConnectionsPerInFlight per request maxInFlight allows (upstream
// leaves them unbounded); a connectionLimit given wins.
func TestParseDaemonConnectionLimit(t *testing.T) {
	for _, tt := range []struct {
		name string
		keys string
		want int
	}{
		{"default", ``, 2 * DefaultMaxInFlight},
		{"follows maxInFlight", `,"maxInFlight":5`, 10},
		{"given", `,"maxInFlight":5,"connectionLimit":3`, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseDaemon([]byte(strings.TrimSuffix(daemonMinimal, "}") + tt.keys + "}"))
			if err != nil {
				t.Fatal(err)
			}
			if c.ConnectionLimit == nil || *c.ConnectionLimit != tt.want {
				t.Errorf("connectionLimit %v, want %d", c.ConnectionLimit, tt.want)
			}
		})
	}
}
