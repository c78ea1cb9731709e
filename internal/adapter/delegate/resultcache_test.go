package delegate

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// Routes as libcni caches them: compact JSON. otherRoute carries keys the edit
// does not read, which must survive byte for byte.
const (
	v4Default  = `{"dst":"0.0.0.0/0","gw":"10.0.0.1"}`
	v6Default  = `{"dst":"::/0","gw":"fd00::1"}`
	otherRoute = `{"dst":"10.10.0.0/16","gw":"10.0.0.1","mtu":1400,"priority":5}`
	otherV6    = `{"dst":"fd10::/64","gw":"fd00::1","table":100}`
	newV4      = `{"dst":"0.0.0.0/0","gw":"10.1.1.1"}`
	newV6      = `{"dst":"::/0","gw":"fd01::1"}`
)

var (
	gw4 = net.ParseIP("10.1.1.1")
	gw6 = net.ParseIP("fd01::1")
)

// cacheSandbox and the attachment of the tests: network "mynet", container c1,
// interface net1, so libcni's cache file is results/mynet-c1-net1.
var cacheSandbox = podnet.Sandbox{ContainerID: "c1", NetNS: "/var/run/netns/c1"}

func cacheAttachment(cniVersion string) podnet.Attachment {
	return podnet.Attachment{
		Network: "ns1/mynet",
		IfName:  "net1",
		Config:  []byte(`{"cniVersion":"` + cniVersion + `","name":"mynet","type":"macvlan","master":"eth1"}`),
	}
}

// writeCache writes a libcni cache entry (kind cniCacheV1) holding result for the
// attachment, with every other key libcni writes, and returns its path.
func writeCache(t *testing.T, cacheDir string, a podnet.Attachment, result string) string {
	t.Helper()
	entry := map[string]any{
		"kind":           "cniCacheV1",
		"containerId":    cacheSandbox.ContainerID,
		"config":         a.Config, // []byte: base64, as libcni writes it
		"ifName":         a.IfName,
		"networkName":    "mynet",
		"netns":          cacheSandbox.NetNS,
		"cniArgs":        [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "pod-1"}},
		"capabilityArgs": map[string]any{"mac": "02:00:00:00:00:01"},
		"result":         json.RawMessage(result),
	}
	data, err := json.Marshal(entry)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cacheDir, "results", "mynet-c1-net1")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readEntry reads a cache entry as raw keys.
func readEntry(t *testing.T, path string) map[string]json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the cache file: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("cache file %s is not a JSON object: %v", data, err)
	}
	return m
}

// rawList decodes a JSON array into the text of its elements, so routes compare
// byte for byte.
func rawList(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatalf("%s is not an array: %v", raw, err)
	}
	out := make([]string, 0, len(list))
	for _, r := range list {
		out = append(out, string(r))
	}
	return out
}

// resultRoutes returns the routes of a cached result: top-level "routes", or,
// with section set, ip4/ip6's "routes" (0.1.0, 0.2.0).
func resultRoutes(t *testing.T, result json.RawMessage, section string) []string {
	t.Helper()
	var r map[string]json.RawMessage
	if err := json.Unmarshal(result, &r); err != nil {
		t.Fatal(err)
	}
	if section == "" {
		return rawList(t, r["routes"])
	}
	var ipc map[string]json.RawMessage
	if err := json.Unmarshal(r[section], &ipc); err != nil {
		t.Fatalf("%s: %v", section, err)
	}
	if ipc["routes"] == nil {
		return nil
	}
	return rawList(t, ipc["routes"])
}

// TestRewriteDefaultRoutes proves the cached-result edit behind R-4.1.2.1.9:
// default routes of the families given go, the other family's default stays,
// every other route stays byte for byte (keys such as mtu, priority, table
// included), and each gateway becomes a 0.0.0.0/0 or ::/0 route; results of
// 0.3.0 and later are edited in "routes", 0.1.0 and 0.2.0 ones in the ip4/ip6
// section of the gateway's family.
func TestRewriteDefaultRoutes(t *testing.T) {
	const (
		ips100 = `"interfaces":[{"name":"net1","sandbox":"/var/run/netns/c1"}],"ips":[{"address":"10.0.0.5/24","gateway":"10.0.0.1","interface":0},{"address":"fd00::5/64","gateway":"fd00::1","interface":0}]`
		ips040 = `"interfaces":[{"name":"net1","sandbox":"/var/run/netns/c1"}],"ips":[{"version":"4","address":"10.0.0.5/24","gateway":"10.0.0.1","interface":0},{"version":"6","address":"fd00::5/64","gateway":"fd00::1","interface":0}]`
	)
	routes := `[` + v4Default + `,` + otherRoute + `,` + v6Default + `,` + otherV6 + `]`
	legacy := `{"cniVersion":"0.2.0",` +
		`"ip4":{"ip":"10.0.0.5/24","gateway":"10.0.0.1","routes":[` + v4Default + `,` + otherRoute + `]},` +
		`"ip6":{"ip":"fd00::5/64","gateway":"fd00::1","routes":[` + v6Default + `,` + otherV6 + `]},` +
		`"dns":{"nameservers":["10.0.0.53"]}}`
	tests := []struct {
		name       string
		cniVersion string
		result     string
		families   []int
		gateways   []net.IP
		// want maps "" (top-level routes) or "ip4"/"ip6" to the routes wanted.
		want map[string][]string
	}{
		{
			name:       "R-4.1.2.1.9 1.0.0 IPv4 gateway keeps the IPv6 default",
			cniVersion: "1.0.0",
			result:     `{"cniVersion":"1.0.0",` + ips100 + `,"routes":` + routes + `}`,
			families:   []int{4},
			gateways:   []net.IP{gw4},
			want:       map[string][]string{"": {otherRoute, v6Default, otherV6, newV4}},
		},
		{
			name:       "R-4.1.2.1.9 1.1.0 both families given, both gateways appended in order",
			cniVersion: "1.1.0",
			result:     `{"cniVersion":"1.1.0",` + ips100 + `,"routes":` + routes + `}`,
			families:   []int{4, 6},
			gateways:   []net.IP{gw6, gw4},
			want:       map[string][]string{"": {otherRoute, otherV6, newV6, newV4}},
		},
		{
			name:       "R-4.1.2.1.9 1.1.0 empty list on another attachment drops both defaults",
			cniVersion: "1.1.0",
			result:     `{"cniVersion":"1.1.0",` + ips100 + `,"routes":` + routes + `}`,
			families:   []int{4, 6},
			want:       map[string][]string{"": {otherRoute, otherV6}},
		},
		{
			name:       "R-4.1.2.1.9 0.4.0 IPv6 gateway keeps the IPv4 default",
			cniVersion: "0.4.0",
			result:     `{"cniVersion":"0.4.0",` + ips040 + `,"routes":` + routes + `}`,
			families:   []int{6},
			gateways:   []net.IP{gw6},
			want:       map[string][]string{"": {v4Default, otherRoute, otherV6, newV6}},
		},
		{
			name:       "R-4.1.2.1.9 1.0.0 result without routes gets the gateway",
			cniVersion: "1.0.0",
			result:     `{"cniVersion":"1.0.0",` + ips100 + `}`,
			families:   []int{4},
			gateways:   []net.IP{gw4},
			want:       map[string][]string{"": {newV4}},
		},
		{
			name:       "R-4.1.2.1.9 0.2.0 IPv4 gateway edits ip4 only",
			cniVersion: "0.2.0",
			result:     legacy,
			families:   []int{4},
			gateways:   []net.IP{gw4},
			want: map[string][]string{
				"ip4": {otherRoute, newV4},
				"ip6": {v6Default, otherV6},
			},
		},
		{
			name:       "R-4.1.2.1.9 0.2.0 both gateways each in its family's section",
			cniVersion: "0.2.0",
			result:     legacy,
			families:   []int{4, 6},
			gateways:   []net.IP{gw4, gw6},
			want: map[string][]string{
				"ip4": {otherRoute, newV4},
				"ip6": {otherV6, newV6},
			},
		},
		{
			name:       "R-4.1.2.1.9 0.2.0 empty list drops both defaults",
			cniVersion: "0.2.0",
			result:     legacy,
			families:   []int{4, 6},
			want: map[string][]string{
				"ip4": {otherRoute},
				"ip6": {otherV6},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cacheDir := t.TempDir()
			a := cacheAttachment(tt.cniVersion)
			path := writeCache(t, cacheDir, a, tt.result)
			before := readEntry(t, path)
			r := &Runner{CacheDir: cacheDir}
			if err := r.RewriteDefaultRoutes(cacheSandbox, a, tt.families, tt.gateways); err != nil {
				t.Fatalf("RewriteDefaultRoutes: %v", err)
			}
			after := readEntry(t, path)
			got := map[string][]string{}
			for section := range tt.want {
				got[section] = resultRoutes(t, after["result"], section)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			// Every other key of the entry is kept exactly.
			for k, v := range before {
				if k == "result" {
					continue
				}
				if string(after[k]) != string(v) {
					t.Errorf("entry key %q = %s, want %s unchanged", k, after[k], v)
				}
			}
			if len(after) != len(before) {
				t.Errorf("entry has keys %v after the edit, want those of %v", keys(after), keys(before))
			}
			// Every other key of the result is kept.
			var rb, ra map[string]json.RawMessage
			if err := json.Unmarshal(before["result"], &rb); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(after["result"], &ra); err != nil {
				t.Fatal(err)
			}
			for k, v := range rb {
				if k == "routes" || k == "ip4" || k == "ip6" {
					continue
				}
				if string(ra[k]) != string(v) {
					t.Errorf("result key %q = %s, want %s unchanged", k, ra[k], v)
				}
			}
			if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("temporary file left behind: %v", err)
			}
		})
	}
}

// TestRewriteDefaultRoutesLegacyKeepsSectionKeys proves that the 0.2.0 edit keeps
// the other keys of ip4/ip6 (ip, gateway) byte for byte.
func TestRewriteDefaultRoutesLegacyKeepsSectionKeys(t *testing.T) {
	cacheDir := t.TempDir()
	a := cacheAttachment("0.2.0")
	path := writeCache(t, cacheDir, a, `{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.5/24","gateway":"10.0.0.1","routes":[`+v4Default+`]}}`)
	r := &Runner{CacheDir: cacheDir}
	if err := r.RewriteDefaultRoutes(cacheSandbox, a, []int{4}, []net.IP{gw4}); err != nil {
		t.Fatalf("RewriteDefaultRoutes: %v", err)
	}
	var result struct {
		IP4 map[string]json.RawMessage `json:"ip4"`
	}
	if err := json.Unmarshal(readEntry(t, path)["result"], &result); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ip": `"10.0.0.5/24"`, "gateway": `"10.0.0.1"`, "routes": `[` + newV4 + `]`}
	got := map[string]string{}
	for k, v := range result.IP4 {
		got[k] = string(v)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ip4 (-want +got):\n%s", diff)
	}
}

// TestRewriteDefaultRoutesNothingToEdit proves the cases that are not errors and
// leave the file as it was: no cache file (nothing CHECK or DEL could disagree
// with; no file is created), and an entry without a result.
func TestRewriteDefaultRoutesNothingToEdit(t *testing.T) {
	tests := []struct {
		name   string
		write  bool
		result string
	}{
		{name: "missing cache file is not an error"},
		{name: "entry without result left alone", write: true},
		{name: "entry with a null result left alone", write: true, result: "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cacheDir := t.TempDir()
			a := cacheAttachment("1.0.0")
			path := filepath.Join(cacheDir, "results", "mynet-c1-net1")
			var before []byte
			if tt.write {
				data := `{"kind":"cniCacheV1","containerId":"c1","ifName":"net1","networkName":"mynet"`
				if tt.result != "" {
					data += `,"result":` + tt.result
				}
				data += `}`
				before = []byte(data)
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, before, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := &Runner{CacheDir: cacheDir}
			if err := r.RewriteDefaultRoutes(cacheSandbox, a, []int{4, 6}, []net.IP{gw4}); err != nil {
				t.Fatalf("RewriteDefaultRoutes: %v", err)
			}
			after, err := os.ReadFile(path)
			if !tt.write {
				if !errors.Is(err, os.ErrNotExist) {
					t.Errorf("cache file created: %v %s", err, after)
				}
				return
			}
			if string(after) != string(before) {
				t.Errorf("cache file = %s, want unchanged %s", after, before)
			}
		})
	}
}

// TestRewriteDefaultRoutesErrors proves that a cache file that is not JSON and an
// attachment whose configuration does not parse are errors, not silently
// skipped.
func TestRewriteDefaultRoutesErrors(t *testing.T) {
	tests := []struct {
		name   string
		config string
		cache  string
	}{
		{name: "cache file not JSON", config: `{"cniVersion":"1.0.0","name":"mynet","type":"macvlan"}`, cache: "{broken"},
		{name: "routes not an array", config: `{"cniVersion":"1.0.0","name":"mynet","type":"macvlan"}`, cache: `{"kind":"cniCacheV1","result":{"cniVersion":"1.0.0","routes":{"dst":"0.0.0.0/0"}}}`},
		{name: "attachment config not JSON", config: `not json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cacheDir := t.TempDir()
			path := filepath.Join(cacheDir, "results", "mynet-c1-net1")
			if tt.cache != "" {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tt.cache), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			a := podnet.Attachment{Network: "ns1/mynet", IfName: "net1", Config: []byte(tt.config)}
			r := &Runner{CacheDir: cacheDir}
			if err := r.RewriteDefaultRoutes(cacheSandbox, a, []int{4}, []net.IP{gw4}); err == nil {
				t.Error("RewriteDefaultRoutes succeeded, want an error")
			}
			if tt.cache != "" {
				if got, _ := os.ReadFile(path); string(got) != tt.cache {
					t.Errorf("cache file = %s, want it untouched", got)
				}
			}
		})
	}
}

func keys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
