package attach

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestResolveCapabilityArgs proves R-4.1.2.1.3, .4, .7, .8 and .10: each requested
// runtime argument goes to the delegate under its CNI convention key with the
// convention's JSON shape, only when some plugin of the network declares
// capabilities.<cap>: true, else the attachment fails with a *CapabilityError
// naming the requirement. deviceID is passed on without a capability check, and a
// selection never gets the runtime's own runtimeConfig.
func TestResolveCapabilityArgs(t *testing.T) {
	const (
		none    = `{"cniVersion":"1.0.0","type":"macvlan"}`
		allCaps = `{"cniVersion":"1.0.0","type":"macvlan","capabilities":{"ips":true,"mac":true,"infinibandGUID":true,"portMappings":true,"bandwidth":true}}`
	)
	capErr := func(key, capability, requirement string) *CapabilityError {
		return &CapabilityError{Network: "ns1/net-a", Key: key, Capability: capability, Requirement: requirement}
	}
	tests := []struct {
		name       string
		nadConfig  string
		annotation string
		want       map[string]string
		wantErr    *CapabilityError
	}{
		{
			name:       "R-4.1.2.1.3 ips go to runtimeConfig.ips as a list",
			nadConfig:  `{"cniVersion":"1.0.0","type":"macvlan","capabilities":{"ips":true}}`,
			annotation: `[{"name":"net-a","ips":["10.1.1.5/24","fd00::5"]}]`,
			want:       map[string]string{"ips": `["10.1.1.5/24","fd00::5"]`},
		},
		{
			name:       "R-4.1.2.1.3 ips without capabilities.ips fails",
			nadConfig:  none,
			annotation: `[{"name":"net-a","ips":["10.1.1.5/24"]}]`,
			wantErr:    capErr("ips", "ips", "R-4.1.2.1.3"),
		},
		{
			name:       "R-4.1.2.1.3 capabilities.ips false fails",
			nadConfig:  `{"cniVersion":"1.0.0","type":"macvlan","capabilities":{"ips":false,"mac":true}}`,
			annotation: `[{"name":"net-a","ips":["10.1.1.5/24"]}]`,
			wantErr:    capErr("ips", "ips", "R-4.1.2.1.3"),
		},
		{
			name:       "R-4.1.2.1.3 a capability declared by a later plugin of a conflist counts",
			nadConfig:  `{"cniVersion":"1.0.0","plugins":[{"type":"macvlan","ipam":{"type":"static"}},{"type":"tuning","capabilities":{"ips":true}}]}`,
			annotation: `[{"name":"net-a","ips":["10.1.1.5/24"]}]`,
			want:       map[string]string{"ips": `["10.1.1.5/24"]`},
		},
		{
			name:       "R-4.1.2.1.3 capabilities at the top of a conflist do not count",
			nadConfig:  `{"cniVersion":"1.0.0","capabilities":{"ips":true},"plugins":[{"type":"macvlan"}]}`,
			annotation: `[{"name":"net-a","ips":["10.1.1.5/24"]}]`,
			wantErr:    capErr("ips", "ips", "R-4.1.2.1.3"),
		},
		{
			name:       "R-4.1.2.1.4 mac goes to runtimeConfig.mac as a string",
			nadConfig:  `{"cniVersion":"1.0.0","type":"macvlan","capabilities":{"mac":true}}`,
			annotation: `[{"name":"net-a","mac":"c2:11:22:33:44:55"}]`,
			want:       map[string]string{"mac": `"c2:11:22:33:44:55"`},
		},
		{
			name:       "R-4.1.2.1.4 mac without capabilities.mac fails",
			nadConfig:  `{"cniVersion":"1.0.0","type":"macvlan","capabilities":{"ips":true}}`,
			annotation: `[{"name":"net-a","mac":"c2:11:22:33:44:55"}]`,
			wantErr:    capErr("mac", "mac", "R-4.1.2.1.4"),
		},
		{
			name:       "R-4.1.2.1.10 infiniband-guid goes to runtimeConfig.infinibandGUID",
			nadConfig:  `{"cniVersion":"1.0.0","type":"ib-sriov","capabilities":{"infinibandGUID":true}}`,
			annotation: `[{"name":"net-a","infiniband-guid":"c2:11:22:33:44:55:66:77"}]`,
			want:       map[string]string{"infinibandGUID": `"c2:11:22:33:44:55:66:77"`},
		},
		{
			name:       "R-4.1.2.1.10 infiniband-guid without capabilities.infinibandGUID fails",
			nadConfig:  `{"cniVersion":"1.0.0","type":"ib-sriov","capabilities":{"infiniband-guid":true}}`,
			annotation: `[{"name":"net-a","infiniband-guid":"c2:11:22:33:44:55:66:77"}]`,
			wantErr:    capErr("infiniband-guid", "infinibandGUID", "R-4.1.2.1.10"),
		},
		{
			name:       "R-4.1.2.1.7 portMappings go to runtimeConfig.portMappings with lower-case protocols",
			nadConfig:  `{"cniVersion":"1.0.0","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}`,
			annotation: `[{"name":"net-a","portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"TCP"},{"hostPort":5353,"containerPort":53,"protocol":"UDP","hostIP":"192.0.2.1"},{"hostPort":9090,"containerPort":90}]}]`,
			want: map[string]string{"portMappings": `[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},` +
				`{"hostPort":5353,"containerPort":53,"protocol":"udp","hostIP":"192.0.2.1"},` +
				`{"hostPort":9090,"containerPort":90,"protocol":"tcp"}]`},
		},
		{
			name:       "R-4.1.2.1.7 portMappings without capabilities.portMappings fails",
			nadConfig:  `{"cniVersion":"1.0.0","plugins":[{"type":"bridge"},{"type":"portmap"}]}`,
			annotation: `[{"name":"net-a","portMappings":[{"hostPort":8080,"containerPort":80}]}]`,
			wantErr:    capErr("portMappings", "portMappings", "R-4.1.2.1.7"),
		},
		{
			name:       "R-4.1.2.1.8 bandwidth goes to runtimeConfig.bandwidth with exact large integers",
			nadConfig:  `{"cniVersion":"1.0.0","plugins":[{"type":"bridge"},{"type":"bandwidth","capabilities":{"bandwidth":true}}]}`,
			annotation: `[{"name":"net-a","bandwidth":{"ingressRate":1000000000,"ingressBurst":2000000000,"egressRate":9007199254740993,"egressBurst":9223372036854775807}}]`,
			want:       map[string]string{"bandwidth": `{"ingressRate":1000000000,"ingressBurst":2000000000,"egressRate":9007199254740993,"egressBurst":9223372036854775807}`},
		},
		{
			name:       "R-4.1.2.1.8 unset bandwidth values are omitted, not zero",
			nadConfig:  `{"cniVersion":"1.0.0","type":"bandwidth","capabilities":{"bandwidth":true}}`,
			annotation: `[{"name":"net-a","bandwidth":{"egressRate":1000000000}}]`,
			want:       map[string]string{"bandwidth": `{"egressRate":1000000000}`},
		},
		{
			name:       "R-4.1.2.1.8 bandwidth without capabilities.bandwidth fails",
			nadConfig:  `{"cniVersion":"1.0.0","plugins":[{"type":"bridge"},{"type":"bandwidth"}]}`,
			annotation: `[{"name":"net-a","bandwidth":{"ingressRate":1000000000}}]`,
			wantErr:    capErr("bandwidth", "bandwidth", "R-4.1.2.1.8"),
		},
		{
			name:       "deviceID is passed on without a capability check",
			nadConfig:  none,
			annotation: `[{"name":"net-a","deviceID":"0000:03:00.1"}]`,
			want:       map[string]string{"deviceID": `"0000:03:00.1"`},
		},
		{
			name:       "every request of one selection together",
			nadConfig:  allCaps,
			annotation: `[{"name":"net-a","ips":["10.1.1.5/24"],"mac":"c2:11:22:33:44:55","infiniband-guid":"c2:11:22:33:44:55:66:77","portMappings":[{"hostPort":8080,"containerPort":80}],"bandwidth":{"ingressRate":1000},"deviceID":"0000:03:00.1"}]`,
			want: map[string]string{
				"ips":            `["10.1.1.5/24"]`,
				"mac":            `"c2:11:22:33:44:55"`,
				"infinibandGUID": `"c2:11:22:33:44:55:66:77"`,
				"portMappings":   `[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]`,
				"bandwidth":      `{"ingressRate":1000}`,
				"deviceID":       `"0000:03:00.1"`,
			},
		},
		{
			name:       "one undeclared request fails the attachment even when others are declared",
			nadConfig:  `{"cniVersion":"1.0.0","type":"macvlan","capabilities":{"ips":true}}`,
			annotation: `[{"name":"net-a","ips":["10.1.1.5/24"],"bandwidth":{"ingressRate":1000}}]`,
			wantErr:    capErr("bandwidth", "bandwidth", "R-4.1.2.1.8"),
		},
		{
			name:       "R-7.5 a selection without requests gets no capability args, not the runtime's runtimeConfig",
			nadConfig:  allCaps,
			annotation: `[{"name":"net-a"}]`,
			want:       nil,
		},
		{
			name:       "empty mac and infiniband-guid are not requests",
			nadConfig:  none,
			annotation: `[{"name":"net-a","mac":"","infiniband-guid":""}]`,
			want:       nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			in := Input{
				Conf: testConf(t, dir, `,"runtimeConfig":{"mac":"c2:00:00:00:00:01","portMappings":[{"hostPort":1,"containerPort":1,"protocol":"tcp"}]}`+
					`,"delegates":[{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"}],"allowPodDeviceID":true`),
				Req:        addRequest(t, defaultArgs),
				Pod:        testPod(),
				NADs:       nads([3]string{"ns1", "net-a", tt.nadConfig}),
				Selections: parseSel(t, tt.annotation),
			}
			planned, err := Resolve(t.Context(), in)
			if tt.wantErr != nil {
				var ce *CapabilityError
				if !errors.As(err, &ce) {
					t.Fatalf("Resolve error = %v, want *CapabilityError", err)
				}
				if diff := cmp.Diff(tt.wantErr, ce); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				if !strings.Contains(ce.Error(), tt.wantErr.Requirement) {
					t.Errorf("error %q does not cite %s", ce, tt.wantErr.Requirement)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if diff := cmp.Diff(tt.want, rawStrings(planned[1].CapabilityArgs)); diff != "" {
				t.Errorf("capability args (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDeclaresSingleConfWithStrayPlugins proves that a configuration is judged a
// single conf or a list the same way everywhere: config.DelegateIsList says a
// non-empty "type" wins over "plugins" (as upstream), so the capability check
// must read the top-level capabilities of such a conf.
func TestDeclaresSingleConfWithStrayPlugins(t *testing.T) {
	cfg := []byte(`{"cniVersion":"1.0.0","name":"net-a","type":"macvlan","capabilities":{"mac":true},"plugins":null}`)
	ok, err := declares(cfg, "mac")
	if err != nil {
		t.Fatalf("declares: %v", err)
	}
	if !ok {
		t.Error("a single conf's own capabilities were not found because of its stray \"plugins\" key")
	}
}

// TestResolveCNIArgs proves R-4.1.2.1.6: cni-args are merged into args.cni of the
// configuration, of every plugin of a conflist, the selection's values winning
// over the configuration's, other keys kept, and numbers kept exact.
func TestResolveCNIArgs(t *testing.T) {
	n := func(s string) json.Number { return json.Number(s) }
	tests := []struct {
		name       string
		nadConfig  string
		annotation string
		// want is the decoded configuration, numbers as json.Number.
		want    map[string]any
		wantErr bool
	}{
		{
			name:       "R-4.1.2.1.6 merged into args.cni of a conf, selection values win, other keys kept",
			nadConfig:  `{"cniVersion":"1.0.0","name":"net-a","type":"macvlan","master":"eth1","args":{"cni":{"keep":"x","over":"old"},"other":{"k":"v"}}}`,
			annotation: `[{"name":"net-a","cni-args":{"over":"new","added":true,"big":12345678901234567890,"nested":{"n":9007199254740993}}}]`,
			want: map[string]any{
				"cniVersion": "1.0.0", "name": "net-a", "type": "macvlan", "master": "eth1",
				"args": map[string]any{
					"cni": map[string]any{
						"keep": "x", "over": "new", "added": true,
						"big": n("12345678901234567890"), "nested": map[string]any{"n": n("9007199254740993")},
					},
					"other": map[string]any{"k": "v"},
				},
			},
		},
		{
			name:       "R-4.1.2.1.6 a conf without args gets args.cni",
			nadConfig:  `{"cniVersion":"1.0.0","name":"net-a","type":"macvlan"}`,
			annotation: `[{"name":"net-a","cni-args":{"vlan":100}}]`,
			want: map[string]any{
				"cniVersion": "1.0.0", "name": "net-a", "type": "macvlan",
				"args": map[string]any{"cni": map[string]any{"vlan": n("100")}},
			},
		},
		{
			name:       "R-4.1.2.1.6 merged into every plugin of a conflist",
			nadConfig:  `{"cniVersion":"1.0.0","name":"net-a","plugins":[{"type":"macvlan","args":{"cni":{"a":"1","over":"old"}}},{"type":"tuning","mtu":9000}]}`,
			annotation: `[{"name":"net-a","cni-args":{"over":"new","big":12345678901234567890}}]`,
			want: map[string]any{
				"cniVersion": "1.0.0", "name": "net-a",
				"plugins": []any{
					map[string]any{"type": "macvlan", "args": map[string]any{"cni": map[string]any{"a": "1", "over": "new", "big": n("12345678901234567890")}}},
					map[string]any{"type": "tuning", "mtu": n("9000"), "args": map[string]any{"cni": map[string]any{"over": "new", "big": n("12345678901234567890")}}},
				},
			},
		},
		{
			name:       "R-4.1.2.1.6 args that are not an object fail",
			nadConfig:  `{"cniVersion":"1.0.0","name":"net-a","type":"macvlan","args":"nope"}`,
			annotation: `[{"name":"net-a","cni-args":{"x":"y"}}]`,
			wantErr:    true,
		},
		{
			name:       "R-4.1.2.1.6 args.cni that is not an object fails",
			nadConfig:  `{"cniVersion":"1.0.0","name":"net-a","type":"macvlan","args":{"cni":[1]}}`,
			annotation: `[{"name":"net-a","cni-args":{"x":"y"}}]`,
			wantErr:    true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			in := Input{
				Conf:       testConf(t, dir, `,"delegates":[{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"}]`),
				Req:        addRequest(t, defaultArgs),
				Pod:        testPod(),
				NADs:       nads([3]string{"ns1", "net-a", tt.nadConfig}),
				Selections: parseSel(t, tt.annotation),
			}
			planned, err := Resolve(t.Context(), in)
			if tt.wantErr {
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Source != "cni-args" {
					t.Fatalf("Resolve error = %v, want *ConfigError from cni-args", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if diff := cmp.Diff(tt.want, decodeExact(t, planned[1].Config)); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// TestResolveCNIArgsNoneKeepsBytes proves that a selection without cni-args
// leaves the configuration's bytes untouched (R-4.1.2.1.6 adds nothing then).
func TestResolveCNIArgsNoneKeepsBytes(t *testing.T) {
	const cfg = `{ "cniVersion":"1.0.0", "name":"net-a", "type":"macvlan", "args":{"cni":{"vlan":12345678901234567890}} }`
	dir := t.TempDir()
	in := Input{
		Conf:       testConf(t, dir, `,"delegates":[{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"}]`),
		Req:        addRequest(t, defaultArgs),
		Pod:        testPod(),
		NADs:       nads([3]string{"ns1", "net-a", cfg}),
		Selections: parseSel(t, `[{"name":"net-a","cni-args":null}]`),
	}
	planned, err := Resolve(t.Context(), in)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if string(planned[1].Config) != cfg {
		t.Errorf("config = %s, want byte for byte %s", planned[1].Config, cfg)
	}
}

// TestResolveCNIArgsKeepsExistingNumbersExact proves that merging cni-args does
// not alter numbers already in the configuration's args.cni: a large integer
// written in the NAD must reach the delegate with the same digits.
func TestResolveCNIArgsKeepsExistingNumbersExact(t *testing.T) {
	dir := t.TempDir()
	in := Input{
		Conf: testConf(t, dir, `,"delegates":[{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"}]`),
		Req:  addRequest(t, defaultArgs),
		Pod:  testPod(),
		NADs: nads([3]string{"ns1", "net-a",
			`{"cniVersion":"1.0.0","name":"net-a","type":"macvlan","args":{"cni":{"id":12345678901234567890,"small":9007199254740993}}}`}),
		Selections: parseSel(t, `[{"name":"net-a","cni-args":{"x":"y"}}]`),
	}
	planned, err := Resolve(t.Context(), in)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	got := decodeExact(t, planned[1].Config)["args"].(map[string]any)["cni"]
	want := map[string]any{"id": json.Number("12345678901234567890"), "small": json.Number("9007199254740993"), "x": "y"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("args.cni numbers changed (-want +got):\n%s", diff)
	}
}
