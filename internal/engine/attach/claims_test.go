package attach

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// fakeClaims is a ClaimSource over claims by name and slices by "driver/pool",
// recording each call.
type fakeClaims struct {
	claims    map[string]*podnet.Claim
	slices    map[string][]podnet.ResourceSlice
	claimErr  error
	slicesErr error
	calls     []string
}

func (f *fakeClaims) Claim(_ context.Context, pod podnet.PodRef, name string) (*podnet.Claim, error) {
	f.calls = append(f.calls, "claim "+pod.String()+"/"+name+" uid "+pod.UID)
	if f.claimErr != nil {
		return nil, f.claimErr
	}
	c, ok := f.claims[name]
	if !ok {
		return nil, &podnet.NotFoundError{Kind: "ResourceClaim", Namespace: pod.Namespace, Name: name}
	}
	return c, nil
}

func (f *fakeClaims) Slices(_ context.Context, driver, pool string, devices []string) ([]podnet.ResourceSlice, error) {
	f.calls = append(f.calls, fmt.Sprintf("slices %s/%s %v", driver, pool, devices))
	if f.slicesErr != nil {
		return nil, f.slicesErr
	}
	return f.slices[driver+"/"+pool], nil
}

const (
	nicDriver = "sriov.example.com"
	gpuDriver = "gpu.example.com"
	draNIC    = "example.com/dra-nic"
)

// nic is a slice device with the two network attributes.
func nic(name, resource, id string) podnet.SliceDevice {
	return podnet.SliceDevice{Name: name, Attributes: map[string]string{
		podnet.DeviceResourceAttribute: resource, podnet.DeviceIDAttribute: id,
	}}
}

// allocated is a claim allocated and reserved for testPod.
func allocated(name string, devs ...podnet.ClaimDevice) *podnet.Claim {
	return &podnet.Claim{Namespace: "ns1", Name: name, Allocated: true, ReservedFor: []string{"uid-1"}, Devices: devs}
}

func result(driver, pool, device string) podnet.ClaimDevice {
	return podnet.ClaimDevice{Request: "req", Driver: driver, Pool: pool, Device: device}
}

// nodePools are the node's slices: a NIC pool of two generations, the newest
// in two slices, and a GPU pool whose device has attributes of its own only.
func nodePools() map[string][]podnet.ResourceSlice {
	return map[string][]podnet.ResourceSlice{
		nicDriver + "/node-1": {
			{Driver: nicDriver, Pool: "node-1", Generation: 1, Devices: []podnet.SliceDevice{
				nic("vf-0", draNIC, "0000:09:00.0"), nic("vf-old", draNIC, "0000:09:00.7"),
			}},
			{Driver: nicDriver, Pool: "node-1", Generation: 2, Devices: []podnet.SliceDevice{
				nic("vf-0", draNIC, "0000:0a:00.0"), nic("vf-1", draNIC, "0000:0a:00.1"),
				{Name: "vf-half", Attributes: map[string]string{podnet.DeviceResourceAttribute: draNIC}},
				nic("vf-path", draNIC, "../../etc/passwd"),
			}},
			{Driver: nicDriver, Pool: "node-1", Generation: 2, Devices: []podnet.SliceDevice{
				nic("vf-2", "example.com/other-nic", "0000:0b:00.2"),
			}},
		},
		gpuDriver + "/node-1": {
			{Driver: gpuDriver, Pool: "node-1", Generation: 1, Devices: []podnet.SliceDevice{
				{Name: "gpu-0", Attributes: map[string]string{"gpu.example.com/model": "h100"}},
			}},
		},
	}
}

// TestClaimDevices: the network devices of a pod's claims, by resource; each
// claim or device that gives none is passed over with a log line, not failed.
func TestClaimDevices(t *testing.T) {
	tests := []struct {
		name      string
		claims    map[string]*podnet.Claim
		podClaims []string
		want      map[string][]string
		wantCalls []string
		wantLog   string
	}{
		{
			name: "a NIC and a GPU in one claim: the GPU is passed over",
			claims: map[string]*podnet.Claim{"c1": allocated("c1",
				result(gpuDriver, "node-1", "gpu-0"), result(nicDriver, "node-1", "vf-1"))},
			podClaims: []string{"c1"},
			want:      map[string][]string{draNIC: {"0000:0a:00.1"}},
			wantCalls: []string{"claim ns1/pod-1/c1 uid uid-1", "slices gpu.example.com/node-1 [gpu-0]", "slices sriov.example.com/node-1 [vf-1]"},
			wantLog:   "without network attributes",
		},
		{
			name: "two claims, devices of two resources, sorted; one pool read once",
			claims: map[string]*podnet.Claim{
				"c1": allocated("c1", result(nicDriver, "node-1", "vf-1"), result(nicDriver, "node-1", "vf-2")),
				"c2": allocated("c2", result(nicDriver, "node-1", "vf-0")),
			},
			podClaims: []string{"c1", "c2"},
			want:      map[string][]string{draNIC: {"0000:0a:00.0", "0000:0a:00.1"}, "example.com/other-nic": {"0000:0b:00.2"}},
			wantCalls: []string{"claim ns1/pod-1/c1 uid uid-1", "claim ns1/pod-1/c2 uid uid-1", "slices sriov.example.com/node-1 [vf-1 vf-2 vf-0]"},
		},
		{
			name:      "a device only in an older generation of its pool",
			claims:    map[string]*podnet.Claim{"c1": allocated("c1", result(nicDriver, "node-1", "vf-old"))},
			podClaims: []string{"c1"},
			want:      map[string][]string{},
			wantCalls: []string{"claim ns1/pod-1/c1 uid uid-1", "slices sriov.example.com/node-1 [vf-old]"},
			wantLog:   "no ResourceSlice of the pool's newest generation",
		},
		{
			name:      "a device of a pool without slices",
			claims:    map[string]*podnet.Claim{"c1": allocated("c1", result(nicDriver, "node-2", "vf-0"))},
			podClaims: []string{"c1"},
			want:      map[string][]string{},
			wantCalls: []string{"claim ns1/pod-1/c1 uid uid-1", "slices sriov.example.com/node-2 [vf-0]"},
			wantLog:   "no ResourceSlice",
		},
		{
			name:      "a device with a resource name and no device ID",
			claims:    map[string]*podnet.Claim{"c1": allocated("c1", result(nicDriver, "node-1", "vf-half"))},
			podClaims: []string{"c1"},
			want:      map[string][]string{},
			wantCalls: []string{"claim ns1/pod-1/c1 uid uid-1", "slices sriov.example.com/node-1 [vf-half]"},
			wantLog:   "without network attributes",
		},
		{
			name:      "a device ID that is not one file name",
			claims:    map[string]*podnet.Claim{"c1": allocated("c1", result(nicDriver, "node-1", "vf-path"))},
			podClaims: []string{"c1"},
			want:      map[string][]string{},
			wantCalls: []string{"claim ns1/pod-1/c1 uid uid-1", "slices sriov.example.com/node-1 [vf-path]"},
			wantLog:   "has a",
		},
		{
			name:      "a missing claim",
			podClaims: []string{"gone"},
			want:      map[string][]string{},
			wantCalls: []string{"claim ns1/pod-1/gone uid uid-1"},
			wantLog:   "ResourceClaim not found",
		},
		{
			name:      "a claim not allocated",
			claims:    map[string]*podnet.Claim{"c1": {Namespace: "ns1", Name: "c1"}},
			podClaims: []string{"c1"},
			want:      map[string][]string{},
			wantCalls: []string{"claim ns1/pod-1/c1 uid uid-1"},
			wantLog:   "not allocated",
		},
		{
			name: "a claim reserved for another pod",
			claims: map[string]*podnet.Claim{"c1": {Namespace: "ns1", Name: "c1", Allocated: true, ReservedFor: []string{"uid-other"},
				Devices: []podnet.ClaimDevice{result(nicDriver, "node-1", "vf-0")}}},
			podClaims: []string{"c1"},
			want:      map[string][]string{},
			wantCalls: []string{"claim ns1/pod-1/c1 uid uid-1"},
			wantLog:   "not reserved for the pod",
		},
		{
			name: "a device allocated with admin access",
			claims: map[string]*podnet.Claim{"c1": allocated("c1",
				podnet.ClaimDevice{Driver: nicDriver, Pool: "node-1", Device: "vf-0", AdminAccess: true})},
			podClaims: []string{"c1"},
			want:      map[string][]string{},
			wantCalls: []string{"claim ns1/pod-1/c1 uid uid-1"},
			wantLog:   "admin access",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeClaims{claims: tt.claims, slices: nodePools()}
			pod := testPod()
			pod.Claims = tt.podClaims
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			got, err := ClaimDevices(t.Context(), src, pod, log)
			if err != nil {
				t.Fatalf("ClaimDevices: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("devices (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantCalls, src.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log %q, want a line with %q", logs.String(), tt.wantLog)
			}
		})
	}
}

// TestClaimDevicesReadErrors: a failed read of a claim or of a pool's slices
// fails, naming the object, with the adapter's error kept for its CNI code.
func TestClaimDevicesReadErrors(t *testing.T) {
	apiErr := &podnet.APIError{Op: "GET x", Status: 503, Transient: true, Err: errors.New("unavailable")}
	tests := []struct {
		name string
		src  *fakeClaims
		want string
	}{
		{name: "claim", src: &fakeClaims{claimErr: apiErr}, want: "ResourceClaim ns1/c1"},
		{name: "slices", src: &fakeClaims{claims: map[string]*podnet.Claim{"c1": allocated("c1", result(nicDriver, "node-1", "vf-0"))}, slicesErr: apiErr},
			want: `ResourceSlices of pool "node-1" of driver sriov.example.com`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod()
			pod.Claims = []string{"c1"}
			_, err := ClaimDevices(t.Context(), tt.src, pod, slog.New(slog.DiscardHandler))
			if !errors.Is(err, apiErr) || !strings.Contains(fmt.Sprint(err), tt.want) {
				t.Errorf("error %v, want one naming %s and wrapping the API error", err, tt.want)
			}
		})
	}
}

// TestDevicesMerge: kubelet's devices and the claims' merge, sorted, each
// device once; claims are read only for a pod that names some, and only when
// a ClaimSource is there; kubelet's failure matters only when the claims
// gave nothing.
func TestDevicesMerge(t *testing.T) {
	kubeletDown := errors.New("kubelet socket refused")
	claims := map[string]*podnet.Claim{"c1": allocated("c1", result(nicDriver, "node-1", "vf-1"), result(nicDriver, "node-1", "vf-0"))}
	tests := []struct {
		name       string
		kubelet    *fakeDevices
		noClaims   bool
		podClaims  []string
		want       map[string][]string
		wantErr    error
		wantClaims int
	}{
		{
			name:       "both, one resource from each and one from both",
			kubelet:    &fakeDevices{ids: map[string][]string{sriovResource: {vf2, vf1}, draNIC: {"0000:0a:00.9", "0000:0a:00.0"}}},
			podClaims:  []string{"c1"},
			want:       map[string][]string{sriovResource: {vf1, vf2}, draNIC: {"0000:0a:00.0", "0000:0a:00.1", "0000:0a:00.9"}},
			wantClaims: 2,
		},
		{
			name:    "a pod without claims: kubelet's alone, no claim read",
			kubelet: &fakeDevices{ids: map[string][]string{sriovResource: {vf1}}},
			want:    map[string][]string{sriovResource: {vf1}},
		},
		{
			name:      "no ClaimSource (DRA not served): kubelet's alone",
			kubelet:   &fakeDevices{ids: map[string][]string{sriovResource: {vf1}}},
			noClaims:  true,
			podClaims: []string{"c1"},
			want:      map[string][]string{sriovResource: {vf1}},
		},
		{
			name:       "kubelet fails, the claims gave devices",
			kubelet:    &fakeDevices{err: kubeletDown},
			podClaims:  []string{"c1"},
			want:       map[string][]string{draNIC: {"0000:0a:00.0", "0000:0a:00.1"}},
			wantClaims: 2,
		},
		{
			name:       "kubelet fails, the claims gave nothing",
			kubelet:    &fakeDevices{err: kubeletDown},
			podClaims:  []string{"missing"},
			wantErr:    kubeletDown,
			wantClaims: 1,
		},
		{
			name:    "kubelet fails, no claims",
			kubelet: &fakeDevices{err: kubeletDown},
			wantErr: kubeletDown,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeClaims{claims: claims, slices: nodePools()}
			d := Devices{Kubelet: tt.kubelet, Claims: src}
			if tt.noClaims {
				d.Claims = nil
			}
			pod := testPod()
			pod.Claims = tt.podClaims
			got, err := d.DeviceIDs(t.Context(), pod)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("devices (-want +got):\n%s", diff)
			}
			if len(src.calls) != tt.wantClaims {
				t.Errorf("DRA reads %v, want %d", src.calls, tt.wantClaims)
			}
		})
	}
}

// TestResolveDevicesFromClaims: a NAD's resource is served by a device of the
// pod's claim exactly as by a device plugin's: deviceID and pciBusID in the
// configuration, the device plugin's device-info file as the source.
func TestResolveDevicesFromClaims(t *testing.T) {
	conf := testConf(t, t.TempDir(), `,"delegates":[{"name":"cbr0","type":"bridge"}]`)
	f := deviceNADs()
	f.nads["ns1/sriov-a"].Annotations[podnet.ResourceNameAnnotation] = draNIC
	pod := testPod()
	pod.Claims = []string{"c1"}
	devs := Devices{Kubelet: &fakeDevices{ids: map[string][]string{}},
		Claims: &fakeClaims{claims: map[string]*podnet.Claim{"c1": allocated("c1", result(gpuDriver, "node-1", "gpu-0"), result(nicDriver, "node-1", "vf-1"))}, slices: nodePools()}}
	in := Input{Conf: conf, Req: addRequest(t, defaultArgs), Pod: pod, NADs: f, Selections: parseSel(t, `[{"name":"sriov-a"}]`), Devices: devs}
	planned, err := Resolve(t.Context(), in)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	p := planned[1]
	if p.DeviceID != "0000:0a:00.1" || p.Resource != draNIC || !strings.Contains(string(p.Config), `"pciBusID":"0000:0a:00.1"`) ||
		p.DeviceInfoSource != podnet.DevicePluginInfoFile(conf.DeviceInfoDir, draNIC, "0000:0a:00.1") {
		t.Errorf("attachment %s: device %q resource %q info %q config %s", p.Network, p.DeviceID, p.Resource, p.DeviceInfoSource, p.Config)
	}
}

// TestResolveDeviceAPIError: a failed API read while finding the pod's
// devices keeps the API error's CNI code (try again later when transient)
// instead of becoming a missing device.
func TestResolveDeviceAPIError(t *testing.T) {
	for _, transient := range []bool{true, false} {
		t.Run(fmt.Sprint("transient ", transient), func(t *testing.T) {
			conf := testConf(t, t.TempDir(), `,"delegates":[{"name":"cbr0","type":"bridge"}]`)
			apiErr := &podnet.APIError{Op: "GET claim", Status: 503, Transient: transient, Err: errors.New("no")}
			in := Input{Conf: conf, Req: addRequest(t, defaultArgs), Pod: testPod(), NADs: deviceNADs(),
				Selections: parseSel(t, `[{"name":"sriov-a"}]`), Devices: &fakeDevices{err: fmt.Errorf("claims: %w", apiErr)}}
			_, err := Resolve(t.Context(), in)
			want := cnicode.KubernetesAPI
			if transient {
				want = cnicode.TryAgainLater
			}
			var coder cnicode.Coder
			if !errors.As(err, &coder) || coder.CNICode() != want || !strings.Contains(fmt.Sprint(err), "ns1/sriov-a") {
				t.Errorf("error %v (code %v), want code %d naming the network", err, coder, want)
			}
		})
	}
}
