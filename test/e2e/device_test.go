package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	podresources "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// delegateDevice is what a delegate was given of its device: deviceID and
// pciBusID in its configuration, and the deviceID and device-info file
// capability arguments.
type delegateDevice struct {
	DeviceID      string `json:"deviceID"`
	PCIBusID      string `json:"pciBusID"`
	RuntimeConfig struct {
		DeviceID string `json:"deviceID"`
		File     string `json:"CNIDeviceInfoFile"`
	} `json:"runtimeConfig"`
}

// kubelet serves kubelet's PodResources API on a unix socket, the real gRPC
// protocol, answering for one pod. Without get it answers Get with Unimplemented,
// as kubelets without that method do.
type kubelet struct {
	podresources.UnimplementedPodResourcesListerServer
	namespace, name string
	devices         map[string][]string
	get             bool
}

func (k *kubelet) pod() *podresources.PodResources {
	var devs []*podresources.ContainerDevices
	for res, ids := range k.devices {
		devs = append(devs, &podresources.ContainerDevices{ResourceName: res, DeviceIds: ids})
	}
	return &podresources.PodResources{Name: k.name, Namespace: k.namespace, Containers: []*podresources.ContainerResources{
		{Name: "app", Devices: devs},
	}}
}

func (k *kubelet) List(context.Context, *podresources.ListPodResourcesRequest) (*podresources.ListPodResourcesResponse, error) {
	other := &podresources.PodResources{Name: "other", Namespace: k.namespace, Containers: []*podresources.ContainerResources{
		{Name: "x", Devices: []*podresources.ContainerDevices{{ResourceName: "example.com/sriov", DeviceIds: []string{"0000:09:00.0"}}}},
	}}
	return &podresources.ListPodResourcesResponse{PodResources: []*podresources.PodResources{other, k.pod()}}, nil
}

func (k *kubelet) Get(ctx context.Context, req *podresources.GetPodResourcesRequest) (*podresources.GetPodResourcesResponse, error) {
	if !k.get {
		return k.UnimplementedPodResourcesListerServer.Get(ctx, req)
	}
	return &podresources.GetPodResourcesResponse{PodResources: k.pod()}, nil
}

func serveKubelet(t *testing.T, socket string, k *kubelet) {
	t.Helper()
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	podresources.RegisterPodResourcesListerServer(srv, k)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
}

// TestDeviceInfo: a NAD annotated with k8s.v1.cni.cncf.io/resourceName gets the
// device kubelet allocated to the pod, read through the PodResources API (Get, or
// List where Get is missing) or from kubelet's checkpoint file. Two attachments of
// one resource get different devices in sorted order; the device reaches the
// delegate as deviceID, pciBusID and the deviceID capability; the device plugin's
// device-info file is copied to the attachment's own (D-4.2.1), passed as
// CNIDeviceInfoFile (D-5.1), reported in network-status (D-6.1.1), and removed
// on DEL (D-4.2.1).
func TestDeviceInfo(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		for _, source := range []string{"Get", "List", "checkpoint"} {
			t.Run(source, func(t *testing.T) {
				e := newEnv(t)
				tmp := t.TempDir()
				devinfo := filepath.Join(tmp, "devinfo")
				socket := filepath.Join(tmp, "kubelet.sock")
				checkpoint := filepath.Join(tmp, "kubelet_internal_checkpoint")
				pod, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sriov,sriov"})
				ids := []string{"0000:03:00.3", "0000:03:00.2"}
				switch source {
				case "checkpoint":
					cp := fmt.Sprintf(`{"Data":{"PodDeviceEntries":[{"PodUID":%q,"ContainerName":"app","ResourceName":"example.com/sriov",
					"DeviceIDs":{"0":["0000:03:00.3","0000:03:00.2"]}},{"PodUID":"someone-else","ResourceName":"example.com/sriov","DeviceIDs":{"0":["0000:09:00.0"]}}]},"Checksum":1}`, pod.UID)
					if err := os.WriteFile(checkpoint, []byte(cp), 0o644); err != nil {
						t.Fatal(err)
					}
				default:
					serveKubelet(t, socket, &kubelet{namespace: e.namespace, name: "pod-1", devices: map[string][]string{"example.com/sriov": ids}, get: source == "Get"})
				}
				for _, id := range ids {
					writeJSON(t, filepath.Join(devinfo, "dp", "example.com-sriov-"+id+"-device.json"),
						map[string]any{"type": "pci", "version": "1.1.0", "pci": map[string]string{"pci-address": id}})
				}
				e.nad("sriov", e.recorderConf(v, "sriov", map[string]any{"capabilities": map[string]bool{"deviceID": true, "CNIDeviceInfoFile": true}}),
					map[string]string{"k8s.v1.cni.cncf.io/resourceName": "example.com/sriov"})
				conf := e.multusConf(v, map[string]any{"podResourcesSocket": socket, "kubeletCheckpoint": checkpoint, "deviceInfoDir": devinfo})
				e.add(conf, sb)

				adds := e.recordsFor("ADD")
				if len(adds) != 2 {
					t.Fatalf("%d secondary ADDs, want 2", len(adds))
				}
				var files []string
				for i, want := range []string{"0000:03:00.2", "0000:03:00.3"} {
					var got delegateDevice
					if err := adds[i].Conf(&got); err != nil {
						t.Fatal(err)
					}
					if got.DeviceID != want || got.PCIBusID != want || got.RuntimeConfig.DeviceID != want || got.RuntimeConfig.File == "" {
						t.Errorf("attachment %d got %+v, want device %s and a device-info file", i, got, want)
					}
					files = append(files, got.RuntimeConfig.File)
					data, err := os.ReadFile(got.RuntimeConfig.File)
					if err != nil || !strings.Contains(string(data), want) {
						t.Errorf("device-info file %s: %q (%v), want the device plugin's for %s", got.RuntimeConfig.File, data, err, want)
					}
				}
				st := e.networkStatus("pod-1")
				if len(st) != 3 || !strings.Contains(string(st[1].DeviceInfo), "0000:03:00.2") || !strings.Contains(string(st[2].DeviceInfo), "0000:03:00.3") {
					t.Errorf("network-status device-info: %+v", st)
				}
				e.del(conf, sb)
				for _, f := range files {
					if _, err := os.Stat(f); !os.IsNotExist(err) {
						t.Errorf("device-info file %s survived DEL", f)
					}
				}
			})
		}
	})
}

// TestDeviceMissingFails: a NAD whose resource the pod was not allocated fails the
// attachment, naming the network and the resource, before any delegate runs.
func TestDeviceMissingFails(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		tmp := t.TempDir()
		socket := filepath.Join(tmp, "kubelet.sock")
		serveKubelet(t, socket, &kubelet{namespace: e.namespace, name: "pod-1", devices: map[string][]string{"example.com/sriov": {"0000:03:00.2"}}, get: true})
		e.nad("sriov", e.recorderConf(v, "sriov", nil), map[string]string{"k8s.v1.cni.cncf.io/resourceName": "example.com/sriov"})
		_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sriov,sriov"})
		_, err := e.rt.Add(e.ctx, e.multusConf(v, map[string]any{"podResourcesSocket": socket, "deviceInfoDir": filepath.Join(tmp, "d")}), sb)
		if ce := cniError(t, err); ce.Code != 108 || !strings.Contains(ce.Msg, "example.com/sriov") {
			t.Errorf("got %v, want code 108 naming the resource", err)
		}
		if n := len(e.recordsFor("ADD")); n != 0 {
			t.Errorf("%d delegates ran", n)
		}
	})
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, _ := json.Marshal(v)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
