package config

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const minimal = `{"cniVersion":"1.0.0","name":"multus-cni-network","type":"multus","delegates":[{"cniVersion":"1.0.0","name":"x","type":"bridge"}]}`

func ptr[T any](v T) *T { return &v }

func mustParse(t *testing.T, data string) *PluginConf {
	t.Helper()
	c, err := ParsePlugin([]byte(data))
	if err != nil {
		t.Fatalf("ParsePlugin(%s): %v", data, err)
	}
	return c
}

func TestParsePluginDefaults(t *testing.T) {
	want := &PluginConf{
		CNIVersion:                "1.0.0",
		Name:                      "multus-cni-network",
		Type:                      "multus",
		ConfDir:                   "/etc/cni/multus/net.d",
		CNIDir:                    "/var/lib/cni/multus",
		BinDir:                    "/opt/cni/bin",
		Delegates:                 []json.RawMessage{json.RawMessage(`{"cniVersion":"1.0.0","name":"x","type":"bridge"}`)},
		MultusNamespace:           "kube-system",
		SystemNamespaces:          []string{"kube-system"},
		GlobalNamespaces:          CommaList{"default"},
		LogLevel:                  "panic",
		LogToStderr:               true,
		DaemonSocketDir:           "/run/multus/",
		APITimeout:                Duration{10 * time.Second},
		APIRetryBudget:            Duration{10 * time.Second},
		ReadinessIndicatorTimeout: Duration{45 * time.Second},
		GCGracePeriod:             Duration{time.Minute},
		DeviceInfoDir:             "/var/run/k8s.cni.cncf.io/devinfo",
		PodResourcesSocket:        "/var/lib/kubelet/pod-resources/kubelet.sock",
		KubeletCheckpoint:         "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint",
		MaxNetworksPerPod:         32,
	}
	got := mustParse(t, minimal)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParsePlugin (-want +got):\n%s", diff)
	}
	maxAge, maxSize, maxBackups, compress := got.LogOptions.Resolved()
	if maxAge != 5 || maxSize != 100 || maxBackups != 5 || !compress {
		t.Errorf("LogOptions.Resolved() = %d, %d, %d, %t; want 5, 100, 5, true", maxAge, maxSize, maxBackups, compress)
	}
}

// everyKey sets every key to a value other than its default, and adds keys we
// ignore.
const everyKey = `{
		"cniVersion": "0.4.0",
		"name": "net",
		"type": "multus-shim",
		"kubeconfig": "/etc/kube.conf",
		"confDir": "/conf",
		"cniDir": "/cni",
		"binDir": "/bin1:/bin2",
		"delegates": [{"cniVersion":"0.4.0","name":"d","plugins":[{"type":"ptp"}]}],
		"defaultNetworks": ["a", "ns/b"],
		"multusNamespace": "multus",
		"systemNamespaces": ["sys1", "sys2"],
		"namespaceIsolation": true,
		"globalNamespaces": "g1, g2",
		"readinessindicatorfile": "/run/ready",
		"logFile": "/var/log/multus.log",
		"logLevel": "DeBuG",
		"logToStderr": false,
		"logOptions": {"maxAge": 1, "maxSize": 2, "maxBackups": 3, "compress": false},
		"capabilities": {"portMappings": true, "bandwidth": false},
		"runtimeConfig": {"portMappings": [{"hostPort": 80}]},
		"retryDeleteOnError": true,
		"auxiliaryCNIChainName": "aux",
		"daemonSocketDir": "/run/other/",
		"prevResult": {"cniVersion": "0.4.0"},
		"apiTimeout": "3s",
		"apiRetryBudget": "1m30s",
		"readinessIndicatorTimeout": "2m",
		"gcGracePeriod": "0s",
		"deviceInfoDir": "/tmp/devinfo",
		"podResourcesSocket": "/tmp/pr.sock",
		"kubeletCheckpoint": "/tmp/checkpoint",
		"cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}],
		"strictNetworkSelection": true,
		"allowPodDeviceID": true,
		"maxNetworksPerPod": 5,
		"cniConf": "/ignored",
		"somethingElse": {"x": [1, 2]}
	}`

func TestParsePluginEveryKey(t *testing.T) {
	want := &PluginConf{
		CNIVersion:                "0.4.0",
		Name:                      "net",
		Type:                      "multus-shim",
		Kubeconfig:                "/etc/kube.conf",
		ConfDir:                   "/conf",
		CNIDir:                    "/cni",
		BinDir:                    "/bin1:/bin2",
		Delegates:                 []json.RawMessage{json.RawMessage(`{"cniVersion":"0.4.0","name":"d","plugins":[{"type":"ptp"}]}`)},
		DefaultNetworks:           []string{"a", "ns/b"},
		MultusNamespace:           "multus",
		SystemNamespaces:          []string{"sys1", "sys2"},
		NamespaceIsolation:        true,
		GlobalNamespaces:          CommaList{"g1", "g2"},
		ReadinessIndicatorFile:    "/run/ready",
		LogFile:                   "/var/log/multus.log",
		LogLevel:                  "debug",
		LogToStderr:               false,
		LogOptions:                LogOptions{MaxAge: ptr(1), MaxSize: ptr(2), MaxBackups: ptr(3), Compress: ptr(false)},
		Capabilities:              map[string]bool{"portMappings": true, "bandwidth": false},
		RuntimeConfig:             map[string]json.RawMessage{"portMappings": json.RawMessage(`[{"hostPort": 80}]`)},
		RetryDeleteOnError:        true,
		AuxiliaryCNIChainName:     "aux",
		DaemonSocketDir:           "/run/other/",
		PrevResult:                json.RawMessage(`{"cniVersion": "0.4.0"}`),
		APITimeout:                Duration{3 * time.Second},
		APIRetryBudget:            Duration{90 * time.Second},
		ReadinessIndicatorTimeout: Duration{2 * time.Minute},
		GCGracePeriod:             Duration{0},
		DeviceInfoDir:             "/tmp/devinfo",
		PodResourcesSocket:        "/tmp/pr.sock",
		KubeletCheckpoint:         "/tmp/checkpoint",
		ValidAttachments:          []Attachment{{ContainerID: "c1", IfName: "eth0"}},
		StrictNetworkSelection:    true,
		AllowPodDeviceID:          true,
		MaxNetworksPerPod:         5,
	}
	got := mustParse(t, everyKey)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParsePlugin (-want +got):\n%s", diff)
	}
	maxAge, maxSize, maxBackups, compress := got.LogOptions.Resolved()
	if maxAge != 1 || maxSize != 2 || maxBackups != 3 || compress {
		t.Errorf("LogOptions.Resolved() = %d, %d, %d, %t; want 1, 2, 3, false", maxAge, maxSize, maxBackups, compress)
	}
}

// TestParsePluginOverrides checks that explicit values win over defaults and that
// empty values get their documented meaning.
func TestParsePluginOverrides(t *testing.T) {
	const delegate = `"delegates":[{"type":"bridge"}]`
	tests := []struct {
		name  string
		data  string
		check func(*PluginConf) any
		want  any
	}{
		{"explicit false beats default true", `{` + delegate + `,"logToStderr":false}`,
			func(c *PluginConf) any { return c.LogToStderr }, false},
		{"null keeps default", `{` + delegate + `,"logToStderr":null,"apiTimeout":null}`,
			func(c *PluginConf) any { return []any{c.LogToStderr, c.APITimeout.Duration} }, []any{true, 10 * time.Second}},
		{"missing cniVersion means 0.1.0", `{` + delegate + `}`,
			func(c *PluginConf) any { return c.CNIVersion }, "0.1.0"},
		{"empty cniVersion means 0.1.0", `{"cniVersion":"",` + delegate + `}`,
			func(c *PluginConf) any { return c.CNIVersion }, "0.1.0"},
		{"empty logLevel means panic", `{` + delegate + `,"logLevel":""}`,
			func(c *PluginConf) any { return c.LogLevel }, "panic"},
		{"logLevel stored lower case", `{` + delegate + `,"logLevel":"VERBOSE"}`,
			func(c *PluginConf) any { return c.LogLevel }, "verbose"},
		{"clusterNetwork clears delegates", `{"clusterNetwork":"default",` + delegate + `}`,
			func(c *PluginConf) any { return len(c.Delegates) }, 0},
		{"clusterNetwork ignores invalid delegates", `{"clusterNetwork":"default","delegates":[{}]}`,
			func(c *PluginConf) any { return c.ClusterNetwork }, "default"},
		{"empty systemNamespaces", `{` + delegate + `,"systemNamespaces":[]}`,
			func(c *PluginConf) any { return c.SystemNamespaces }, []string{}},
		{"explicit zero log options", `{` + delegate + `,"logOptions":{"maxAge":0,"maxBackups":0}}`,
			func(c *PluginConf) any { a, _, b, _ := c.LogOptions.Resolved(); return []int{a, b} }, []int{0, 0}},
		{"keys match without regard to case", `{` + delegate + `,"LOGTOSTDERR":false,"ApiTimeout":"1s"}`,
			func(c *PluginConf) any { return []any{c.LogToStderr, c.APITimeout.Duration} }, []any{false, time.Second}},
		{"last duplicate key wins", `{` + delegate + `,"logLevel":"debug","logLevel":"error"}`,
			func(c *PluginConf) any { return c.LogLevel }, "error"},
		{"empty binDir", `{` + delegate + `,"binDir":""}`,
			func(c *PluginConf) any { return len(c.BinDirs()) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.check(mustParse(t, tt.data))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePluginGlobalNamespaces(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  CommaList
	}{
		{"absent", ``, CommaList{"default"}},
		{"null", `,"globalNamespaces":null`, CommaList{"default"}},
		{"empty string", `,"globalNamespaces":""`, CommaList{"default"}},
		{"blank items only", `,"globalNamespaces":" , ,"`, CommaList{"default"}},
		{"one", `,"globalNamespaces":"kube-public"`, CommaList{"kube-public"}},
		{"string replaces default, items trimmed", `,"globalNamespaces":" a ,b,, c "`, CommaList{"a", "b", "c"}},
		{"array", `,"globalNamespaces":["a"," b "]`, CommaList{"a", "b"}},
		{"empty array", `,"globalNamespaces":[]`, CommaList{"default"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, `{"clusterNetwork":"n"`+tt.value+`}`)
			if diff := cmp.Diff(tt.want, c.GlobalNamespaces); diff != "" {
				t.Errorf("GlobalNamespaces (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBinDirs(t *testing.T) {
	tests := []struct {
		binDir string
		want   []string
	}{
		{"", nil},
		{"/opt/cni/bin", []string{"/opt/cni/bin"}},
		{"/a:/b", []string{"/a", "/b"}},
		{":/a::/b:", []string{"/a", "/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.binDir, func(t *testing.T) {
			c := &PluginConf{BinDir: tt.binDir}
			if diff := cmp.Diff(tt.want, c.BinDirs()); diff != "" {
				t.Errorf("BinDirs() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLogOptionsResolved(t *testing.T) {
	tests := []struct {
		name string
		o    LogOptions
		want []any
	}{
		{"defaults", LogOptions{}, []any{5, 100, 5, true}},
		{"all set", LogOptions{MaxAge: ptr(0), MaxSize: ptr(1), MaxBackups: ptr(0), Compress: ptr(false)}, []any{0, 1, 0, false}},
		{"some set", LogOptions{MaxSize: ptr(7)}, []any{5, 7, 5, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, s, b, c := tt.o.Resolved()
			if diff := cmp.Diff(tt.want, []any{a, s, b, c}); diff != "" {
				t.Errorf("Resolved() (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPluginConfRoundTrip checks that a decoded configuration encodes to JSON
// that decodes to the same configuration, as the shim relies on when it forwards
// the configuration to the daemon.
func TestPluginConfRoundTrip(t *testing.T) {
	first := mustParse(t, `{"clusterNetwork":"n","globalNamespaces":"a,b","apiTimeout":"1m30s","logOptions":{"maxSize":3}}`)
	data, err := json.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	second := mustParse(t, string(data))
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("round trip (-first +second):\n%s", diff)
	}
}

// TestValidAttachmentsLegacyName reads the CNI 1.1 spec's earlier key, which libcni
// still writes beside the current one, when the current one is absent.
func TestValidAttachmentsLegacyName(t *testing.T) {
	for name, extra := range map[string]string{
		"current": `"cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]`,
		"legacy":  `"cni.dev/attachments":[{"containerID":"c1","ifname":"eth0"}]`,
	} {
		c := mustParse(t, `{"cniVersion":"1.1.0","delegates":[{"type":"bridge"}],`+extra+`}`)
		if diff := cmp.Diff([]Attachment{{ContainerID: "c1", IfName: "eth0"}}, c.Valid()); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", name, diff)
		}
	}
}
