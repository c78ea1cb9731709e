package attach

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// fakeDevices is a DeviceSource returning ids (or err) and recording each call.
type fakeDevices struct {
	ids   map[string][]string
	err   error
	calls []podnet.PodRef
}

func (f *fakeDevices) DeviceIDs(_ context.Context, pod *podnet.Pod) (map[string][]string, error) {
	f.calls = append(f.calls, pod.Ref())
	return f.ids, f.err
}

// The device plugin resource of the tests and the two devices kubelet gave the
// pod, in sorted order.
const (
	sriovResource = "intel.com/sriov_netdevice"
	vf1           = "0000:03:00.1"
	vf2           = "0000:03:00.2"
)

// NAD configurations of the device tests.
const (
	sriovConf     = `{"cniVersion":"1.0.0","type":"sriov","capabilities":{"CNIDeviceInfoFile":true}}`
	sriovList     = `{"cniVersion":"1.0.0","plugins":[{"type":"sriov","vlan":10},{"type":"tuning"}]}`
	plainConf     = `{"cniVersion":"1.0.0","type":"host-device"}`
	declaringConf = `{"cniVersion":"1.0.0","plugins":[{"type":"macvlan"},{"type":"dp-writer","capabilities":{"CNIDeviceInfoFile":true}}]}`
)

// deviceNADs are the NADs of the device tests; sriov-a, sriov-b and sriov-c are
// annotated with the resource.
func deviceNADs() *fakeNADs {
	f := nads(
		[3]string{"ns1", "sriov-a", sriovConf},
		[3]string{"ns1", "sriov-b", sriovList},
		[3]string{"ns1", "sriov-c", sriovConf},
		[3]string{"ns1", "plain", plainConf},
		[3]string{"ns1", "declaring", declaringConf},
		[3]string{"kube-system", "cluster-sriov", `{"cniVersion":"1.0.0","type":"sriov"}`},
	)
	for _, n := range []string{"ns1/sriov-a", "ns1/sriov-b", "ns1/sriov-c", "kube-system/cluster-sriov"} {
		f.nads[n].Annotations = map[string]string{podnet.ResourceNameAnnotation: sriovResource}
	}
	return f
}

// pluginDevices returns the deviceID and pciBusID of every plugin of a
// configuration (the configuration itself when it is a single conf), as
// "deviceID/pciBusID"; "" for a plugin with neither.
func pluginDevices(t *testing.T, cfg []byte) []string {
	t.Helper()
	m := decodeExact(t, cfg)
	ps := []any{m}
	if list, ok := m["plugins"].([]any); ok {
		ps = list
	}
	var out []string
	for _, p := range ps {
		pm := p.(map[string]any)
		id, _ := pm["deviceID"].(string)
		bus, _ := pm["pciBusID"].(string)
		if id == "" && bus == "" {
			out = append(out, "")
			continue
		}
		out = append(out, id+"/"+bus)
	}
	return out
}

// deviceSummary is what the device tests compare of one attachment.
type deviceSummary struct {
	Network          string
	DeviceID         string
	Resource         string
	PluginDevices    []string
	DeviceIDArg      string
	DeviceInfoFile   string
	DeviceInfoArg    string
	DeviceInfoSource string
}

func summarizeDevices(t *testing.T, planned []Planned) []deviceSummary {
	t.Helper()
	var out []deviceSummary
	for _, p := range planned {
		s := deviceSummary{
			Network: p.Network, DeviceID: p.DeviceID, Resource: p.Resource,
			PluginDevices: pluginDevices(t, p.Config), DeviceInfoFile: p.DeviceInfoFile, DeviceInfoSource: p.DeviceInfoSource,
		}
		if raw, ok := p.CapabilityArgs["deviceID"]; ok {
			s.DeviceIDArg = string(raw)
		}
		if raw, ok := p.CapabilityArgs["CNIDeviceInfoFile"]; ok {
			var path string
			if err := json.Unmarshal(raw, &path); err != nil {
				t.Fatalf("CNIDeviceInfoFile %s: %v", raw, err)
			}
			s.DeviceInfoArg = path
		}
		out = append(out, s)
	}
	return out
}

// TestResolveDevices proves the device handling of D-4.2.1 and D-5.1: each
// attachment of a NAD annotated with a resourceName takes the next device kubelet
// gave the pod for that resource, in sorted order; the device goes into every
// plugin of the configuration as deviceID and pciBusID and into the deviceID
// capability argument; a selection's deviceID is used for a NAD without a
// resource; the attachment's device-info file is
// <dir>/cni/<ns>-<nad>-<containerID>_<ifname> when it has a device or a plugin
// declares CNIDeviceInfoFile; the CNIDeviceInfoFile argument is set only when
// declared; the device plugin's file to copy is
// <dir>/dp/<resource, "/" replaced>-<id>-device.json.
func TestResolveDevices(t *testing.T) {
	dir := t.TempDir()
	devDir := filepath.Join(dir, "devinfo")
	cni := func(name string) string { return filepath.Join(devDir, "cni", name) }
	dp := func(id string) string {
		return filepath.Join(devDir, "dp", "intel.com-sriov_netdevice-"+id+"-device.json")
	}
	cluster := deviceSummary{Network: "cbr0", PluginDevices: []string{""}}
	tests := []struct {
		name      string
		extra     string
		sel       string
		want      []deviceSummary
		wantCalls int
	}{
		{
			name: "D-4.2.1 two NADs of one resource get the first and second devices",
			sel:  `[{"name":"sriov-a"},{"name":"sriov-b"}]`,
			want: []deviceSummary{
				cluster,
				{
					Network: "ns1/sriov-a", DeviceID: vf1, Resource: sriovResource,
					PluginDevices: []string{vf1 + "/" + vf1}, DeviceIDArg: `"` + vf1 + `"`,
					DeviceInfoFile: cni("ns1-sriov-a-c1_net1"), DeviceInfoArg: cni("ns1-sriov-a-c1_net1"), DeviceInfoSource: dp(vf1),
				},
				{
					Network: "ns1/sriov-b", DeviceID: vf2, Resource: sriovResource,
					PluginDevices: []string{vf2 + "/" + vf2, vf2 + "/" + vf2}, DeviceIDArg: `"` + vf2 + `"`,
					DeviceInfoFile: cni("ns1-sriov-b-c1_net2"), DeviceInfoSource: dp(vf2),
				},
			},
			wantCalls: 1,
		},
		{
			name:  "selection deviceID for a NAD without resource (allowed), requested interface in the file name",
			extra: `,"delegates":[{"name":"cbr0","type":"bridge"}],"allowPodDeviceID":true`,
			sel:   `[{"name":"plain","interface":"vf0","deviceID":"0000:05:00.0"}]`,
			want: []deviceSummary{
				cluster,
				{
					Network: "ns1/plain", DeviceID: "0000:05:00.0",
					PluginDevices: []string{"0000:05:00.0/0000:05:00.0"}, DeviceIDArg: `"0000:05:00.0"`,
					DeviceInfoFile: cni("ns1-plain-c1_vf0"),
				},
			},
		},
		{
			name: "the NAD's resource wins over a selection deviceID",
			sel:  `[{"name":"sriov-c","deviceID":"0000:05:00.0"}]`,
			want: []deviceSummary{
				cluster,
				{
					Network: "ns1/sriov-c", DeviceID: vf1, Resource: sriovResource,
					PluginDevices: []string{vf1 + "/" + vf1}, DeviceIDArg: `"` + vf1 + `"`,
					DeviceInfoFile: cni("ns1-sriov-c-c1_net1"), DeviceInfoArg: cni("ns1-sriov-c-c1_net1"), DeviceInfoSource: dp(vf1),
				},
			},
			wantCalls: 1,
		},
		{
			name: "D-5.1 a declaring plugin without device gets a file and the argument",
			sel:  `[{"name":"declaring"},{"name":"plain"}]`,
			want: []deviceSummary{
				cluster,
				{
					Network: "ns1/declaring", PluginDevices: []string{"", ""},
					DeviceInfoFile: cni("ns1-declaring-c1_net1"), DeviceInfoArg: cni("ns1-declaring-c1_net1"),
				},
				{Network: "ns1/plain", PluginDevices: []string{""}},
			},
		},
		{
			name:  "cluster network NAD with a resource gets a device",
			extra: `,"clusterNetwork":"cluster-sriov"`,
			sel:   `[{"name":"sriov-a"}]`,
			want: []deviceSummary{
				{
					Network: "kube-system/cluster-sriov", DeviceID: vf1, Resource: sriovResource,
					PluginDevices: []string{vf1 + "/" + vf1}, DeviceIDArg: `"` + vf1 + `"`,
					DeviceInfoFile: cni("kube-system-cluster-sriov-c1_eth0"), DeviceInfoSource: dp(vf1),
				},
				{
					Network: "ns1/sriov-a", DeviceID: vf2, Resource: sriovResource,
					PluginDevices: []string{vf2 + "/" + vf2}, DeviceIDArg: `"` + vf2 + `"`,
					DeviceInfoFile: cni("ns1-sriov-a-c1_net1"), DeviceInfoArg: cni("ns1-sriov-a-c1_net1"), DeviceInfoSource: dp(vf2),
				},
			},
			wantCalls: 1,
		},
		{
			name: "no resource: the device source is never asked",
			sel:  `[{"name":"plain"}]`,
			want: []deviceSummary{cluster, {Network: "ns1/plain", PluginDevices: []string{""}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := tt.extra
			if extra == "" {
				extra = `,"delegates":[{"name":"cbr0","type":"bridge"}]`
			}
			conf := testConf(t, dir, `,"deviceInfoDir":`+quoteJSON(devDir)+extra)
			devs := &fakeDevices{ids: map[string][]string{sriovResource: {vf1, vf2}, "other/res": {"x"}}}
			in := Input{Conf: conf, Req: addRequest(t, defaultArgs), Pod: testPod(), NADs: deviceNADs(),
				Selections: parseSel(t, tt.sel), Devices: devs}
			planned, err := Resolve(t.Context(), in)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if diff := cmp.Diff(tt.want, summarizeDevices(t, planned)); diff != "" {
				t.Errorf("devices (-want +got):\n%s", diff)
			}
			if len(devs.calls) != tt.wantCalls {
				t.Errorf("device source called %d times, want %d", len(devs.calls), tt.wantCalls)
			}
			for _, c := range devs.calls {
				if c != testPod().Ref() {
					t.Errorf("device source asked about %v, want the pod %v", c, testPod().Ref())
				}
			}
		})
	}
}

// TestResolveDevicesKeepOtherKeys proves that injecting the device keeps the
// configuration's other keys and values (the conflist's vlan, every plugin's
// type).
func TestResolveDevicesKeepOtherKeys(t *testing.T) {
	dir := t.TempDir()
	conf := testConf(t, dir, `,"delegates":[{"name":"cbr0","type":"bridge"}]`)
	devs := &fakeDevices{ids: map[string][]string{sriovResource: {vf1}}}
	in := Input{Conf: conf, Req: addRequest(t, defaultArgs), Pod: testPod(), NADs: deviceNADs(),
		Selections: parseSel(t, `[{"name":"sriov-b"}]`), Devices: devs}
	planned, err := Resolve(t.Context(), in)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	want := map[string]any{
		"cniVersion": "1.0.0", "name": "sriov-b",
		"plugins": []any{
			map[string]any{"type": "sriov", "vlan": json.Number("10"), "deviceID": vf1, "pciBusID": vf1},
			map[string]any{"type": "tuning", "deviceID": vf1, "pciBusID": vf1},
		},
	}
	if diff := cmp.Diff(want, decodeExact(t, planned[1].Config)); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

// TestResolveDevicesOnceForAllResources proves that the device source is asked
// once per resolution, however many attachments and resources need devices.
func TestResolveDevicesOnceForAllResources(t *testing.T) {
	dir := t.TempDir()
	conf := testConf(t, dir, `,"delegates":[{"name":"cbr0","type":"bridge"}]`)
	f := deviceNADs()
	f.nads["ns1/sriov-c"].Annotations[podnet.ResourceNameAnnotation] = "mellanox.com/cx5"
	devs := &fakeDevices{ids: map[string][]string{sriovResource: {vf1, vf2}, "mellanox.com/cx5": {"0000:81:00.4"}}}
	in := Input{Conf: conf, Req: addRequest(t, defaultArgs), Pod: testPod(), NADs: f,
		Selections: parseSel(t, `[{"name":"sriov-a"},{"name":"sriov-c"},{"name":"sriov-b"}]`), Devices: devs}
	planned, err := Resolve(t.Context(), in)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	var got []string
	for _, p := range planned[1:] {
		got = append(got, p.Network+" "+p.DeviceID+" "+p.DeviceInfoSource)
	}
	devDir := conf.DeviceInfoDir
	want := []string{
		"ns1/sriov-a " + vf1 + " " + filepath.Join(devDir, "dp", "intel.com-sriov_netdevice-"+vf1+"-device.json"),
		"ns1/sriov-c 0000:81:00.4 " + filepath.Join(devDir, "dp", "mellanox.com-cx5-0000:81:00.4-device.json"),
		"ns1/sriov-b " + vf2 + " " + filepath.Join(devDir, "dp", "intel.com-sriov_netdevice-"+vf2+"-device.json"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("devices (-want +got):\n%s", diff)
	}
	if len(devs.calls) != 1 {
		t.Errorf("device source called %d times, want 1", len(devs.calls))
	}
}

// TestResolveDeviceErrors proves that a network needing a device it cannot get
// fails resolution with a *DeviceError (code DeviceUnavailable) naming the
// network and the resource: more attachments than devices, no device source, no
// pod, the source failing, a resource the pod was not given.
func TestResolveDeviceErrors(t *testing.T) {
	tests := []struct {
		name        string
		sel         string
		devs        *fakeDevices
		noPod       bool
		wantNetwork string
	}{
		{
			name:        "D-4.2.1 a third attachment of a two-device resource",
			sel:         `[{"name":"sriov-a"},{"name":"sriov-b"},{"name":"sriov-c"}]`,
			devs:        &fakeDevices{ids: map[string][]string{sriovResource: {vf1, vf2}}},
			wantNetwork: "ns1/sriov-c",
		},
		{
			name:        "no device source",
			sel:         `[{"name":"sriov-a"}]`,
			wantNetwork: "ns1/sriov-a",
		},
		{
			name:        "no pod",
			sel:         `[{"name":"sriov-a"}]`,
			devs:        &fakeDevices{ids: map[string][]string{sriovResource: {vf1}}},
			noPod:       true,
			wantNetwork: "ns1/sriov-a",
		},
		{
			name:        "device source fails",
			sel:         `[{"name":"sriov-a"}]`,
			devs:        &fakeDevices{err: errors.New("kubelet socket refused")},
			wantNetwork: "ns1/sriov-a",
		},
		{
			name:        "resource not given to the pod",
			sel:         `[{"name":"sriov-a"}]`,
			devs:        &fakeDevices{ids: map[string][]string{"other/res": {"x"}}},
			wantNetwork: "ns1/sriov-a",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := testConf(t, t.TempDir(), `,"delegates":[{"name":"cbr0","type":"bridge"}]`)
			in := Input{Conf: conf, Req: addRequest(t, defaultArgs), Pod: testPod(), NADs: deviceNADs(),
				Selections: parseSel(t, tt.sel)}
			if tt.devs != nil {
				in.Devices = tt.devs
			}
			if tt.noPod {
				in.Pod = nil
			}
			_, err := Resolve(t.Context(), in)
			var de *DeviceError
			if !errors.As(err, &de) {
				t.Fatalf("Resolve error = %v, want *DeviceError", err)
			}
			if de.Network != tt.wantNetwork || de.Resource != sriovResource {
				t.Errorf("DeviceError network %q resource %q, want %q %q", de.Network, de.Resource, tt.wantNetwork, sriovResource)
			}
			var coder cnicode.Coder
			if !errors.As(err, &coder) || coder.CNICode() != cnicode.DeviceUnavailable {
				t.Errorf("CNI code of %v = %v, want %d", err, coder, cnicode.DeviceUnavailable)
			}
			if tt.devs != nil && len(tt.devs.calls) > 1 {
				t.Errorf("device source called %d times, want at most 1", len(tt.devs.calls))
			}
		})
	}
}

// quoteJSON returns s as a JSON string.
func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestResolvePodDeviceID proves that a deviceID the pod's annotation gives is
// refused for a NAD that names no resource unless the operator set
// allowPodDeviceID: a namespace user must not point a host-device or SR-IOV
// network at a device kubelet never allocated to the pod. The refusal (code
// NetworkRefused) names the pod, the network and the key, and nothing reaches
// the configuration. With the key set the device is injected as upstream does;
// a deviceID for a NAD with a resource is still accepted, and the allocated
// device used.
func TestResolvePodDeviceID(t *testing.T) {
	tests := []struct {
		name       string
		extra      string
		sel        string
		wantErr    bool
		wantDevice string
	}{
		{name: "refused by default", sel: `[{"name":"plain","deviceID":"0000:05:00.0"}]`, wantErr: true},
		{name: "refused when explicitly off", extra: `,"allowPodDeviceID":false`, sel: `[{"name":"plain","deviceID":"0000:05:00.0"}]`, wantErr: true},
		{name: "accepted when the operator opts in", extra: `,"allowPodDeviceID":true`, sel: `[{"name":"plain","deviceID":"0000:05:00.0"}]`, wantDevice: "0000:05:00.0"},
		{name: "a NAD with a resource takes the allocated device", sel: `[{"name":"sriov-c","deviceID":"0000:05:00.0"}]`, wantDevice: vf1},
		{name: "no deviceID, nothing to refuse", sel: `[{"name":"plain"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := testConf(t, t.TempDir(), `,"delegates":[{"name":"cbr0","type":"bridge"}]`+tt.extra)
			devs := &fakeDevices{ids: map[string][]string{sriovResource: {vf1, vf2}}}
			in := Input{Conf: conf, Req: addRequest(t, defaultArgs), Pod: testPod(), NADs: deviceNADs(),
				Selections: parseSel(t, tt.sel), Devices: devs}
			planned, err := Resolve(t.Context(), in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Resolve accepted the pod's deviceID: %s got device %q", planned[1].Network, planned[1].DeviceID)
				}
				var pe *PodDeviceIDError
				if !errors.As(err, &pe) || pe.Network != "ns1/plain" || pe.DeviceID != "0000:05:00.0" || pe.Pod != testPod().Ref() {
					t.Errorf("Resolve error = %#v, want a *PodDeviceIDError for ns1/plain, 0000:05:00.0 and the pod", err)
				}
				var coder cnicode.Coder
				if !errors.As(err, &coder) || coder.CNICode() != cnicode.NetworkRefused {
					t.Errorf("CNI code of %v = %v, want %d", err, coder, cnicode.NetworkRefused)
				}
				if len(devs.calls) != 0 {
					t.Errorf("device source asked %d times before the refusal", len(devs.calls))
				}
				for _, want := range []string{"ns1/pod-1", `"ns1/plain"`, "0000:05:00.0", `"allowPodDeviceID": true`} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not name %s", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got := planned[1].DeviceID; got != tt.wantDevice {
				t.Errorf("device %q, want %q", got, tt.wantDevice)
			}
			wantPlugin := []string{""}
			if tt.wantDevice != "" {
				wantPlugin = []string{tt.wantDevice + "/" + tt.wantDevice}
			}
			if diff := cmp.Diff(wantPlugin, pluginDevices(t, planned[1].Config)); diff != "" {
				t.Errorf("deviceID/pciBusID in the configuration (-want +got):\n%s", diff)
			}
		})
	}
}
