package podresources

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	podresourcesapi "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// checkpointSeeds are kubelet device-plugin checkpoints
// (/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint) as current and
// old kubelets write them, and damaged ones. The pod the fuzz target asks for is
// u1.
var checkpointSeeds = []string{
	`{"Data":{"PodDeviceEntries":[{"PodUID":"u1","ContainerName":"app","ResourceName":"intel.com/intel_sriov_netdevice",` +
		`"DeviceIDs":{"0":["0000:3b:02.2"],"1":["0000:af:02.0"]},"AllocResp":"CiIKGVBDSURFVklDRV9JTlRFTF9DT00vSU5URUxfU1JJT1YSBTAwMDA="},` +
		`{"PodUID":"u1","ContainerName":"init","ResourceName":"nvidia.com/gpu","DeviceIDs":{"-1":["GPU-8b3c"]},"AllocResp":""},` +
		`{"PodUID":"u2","ContainerName":"app","ResourceName":"intel.com/intel_sriov_netdevice","DeviceIDs":{"0":["0000:3b:02.3"]},"AllocResp":""}],` +
		`"RegisteredDevices":{"intel.com/intel_sriov_netdevice":["0000:3b:02.2","0000:3b:02.3","0000:af:02.0"],"nvidia.com/gpu":["GPU-8b3c"]}},"Checksum":2262205670}`,
	`{"Data":{"PodDeviceEntries":[{"PodUID":"u1","ContainerName":"c","ResourceName":"r/a","DeviceIDs":["d2","d1"],"AllocResp":null}],"RegisteredDevices":{"r/a":["d1","d2"]}},"Checksum":1}`,
	`{"Data":{"PodDeviceEntries":null,"RegisteredDevices":null},"Checksum":0}`,
	`{"Data":{"PodDeviceEntries":[{"PodUID":"u1","ResourceName":"r/a","DeviceIDs":null}]}}`,
	`{"Data":{"PodDeviceEntries":[{"PodUID":"u1","ResourceName":"r/a"}]}}`,
	`{"Data":{"PodDeviceEntries":[{"PodUID":"u1","ResourceName":"r/a","DeviceIDs":"d1"}]}}`,
	`{"Data":{"PodDeviceEntries":[{"PodUID":"u2","ResourceName":"r/a","DeviceIDs":"d1"}]}}`,
	`{"Data":{"PodDeviceEntries":[{"poduid":"u1","resourcename":"r/b","DeviceIDs":{"0":[]}}]}}`,
	`{}`, `null`, `[]`, ``, `{"Data":`,
}

// FuzzCheckpoint reads whatever kubelet's checkpoint file holds, for pod u1.
// Properties: DeviceIDs never panics; a refusal names the checkpoint file; an
// accepted file gives exactly the device IDs of u1's entries, per resource name,
// sorted, and nothing of another pod's (checked against an independent reading
// of the file with a generic JSON decoder).
func FuzzCheckpoint(f *testing.F) {
	for _, s := range checkpointSeeds {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	src := Source{Socket: filepath.Join(dir, "no-kubelet.sock"), Checkpoint: filepath.Join(dir, "kubelet_internal_checkpoint")}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(src.Checkpoint, data, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := src.DeviceIDs(t.Context(), &podnet.Pod{Namespace: "ns", Name: "p", UID: "u1"})
		if err != nil {
			if got != nil || !strings.Contains(err.Error(), src.Checkpoint) {
				t.Fatalf("refused with %q and %v; want an error naming %s alone", err, got, src.Checkpoint)
			}
			return
		}
		want, ok := checkpointModel(data, "u1")
		if !ok {
			return // keys that differ only in case: which wins depends on their order
		}
		for r, ids := range got {
			if !slices.IsSorted(ids) {
				t.Fatalf("devices of %q not sorted: %q", r, ids)
			}
		}
		if diff := cmp.Diff(withoutEmpty(want), withoutEmpty(got)); diff != "" {
			t.Fatalf("devices of u1 (-model +read):\n%s", diff)
		}
	})
}

// checkpointModel reads the devices of pod uid from a checkpoint with a generic
// JSON decoder: DeviceIDs is a list of IDs, or an object of such lists by NUMA
// node. It reports false when it cannot tell: the file is not such a
// checkpoint, or an entry spells a key two ways (encoding/json matches keys
// regardless of case, and the last in the file wins; a map forgets the order).
func checkpointModel(data []byte, uid string) (map[string][]string, bool) {
	var cp struct {
		Data struct{ PodDeviceEntries []map[string]json.RawMessage }
	}
	if json.Unmarshal(data, &cp) != nil {
		return nil, false
	}
	out := map[string][]string{}
	for _, e := range cp.Data.PodDeviceEntries {
		pod, ok1 := rawKey(e, "PodUID")
		resource, ok2 := rawKey(e, "ResourceName")
		devices, ok3 := rawKey(e, "DeviceIDs")
		if !ok1 || !ok2 || !ok3 {
			return nil, false
		}
		if jsonString(pod) != uid {
			continue
		}
		ids, ok := deviceIDs(devices)
		if !ok {
			return nil, false
		}
		r := jsonString(resource)
		out[r] = append(out[r], ids...)
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out, true
}

func jsonString(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// rawKey returns the value of key in e, matched regardless of case, and false
// when two spellings of it are present.
func rawKey(e map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	var out json.RawMessage
	n := 0
	for k, v := range e {
		if strings.EqualFold(k, key) {
			out = v
			n++
		}
	}
	return out, n <= 1
}

// withoutEmpty drops resources without devices: a reader cannot tell them from
// absent ones.
func withoutEmpty(m map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range m {
		if len(v) > 0 {
			out[k] = v
		}
	}
	return out
}

func deviceIDs(raw json.RawMessage) ([]string, bool) {
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list, true
	}
	var byNUMA map[string][]string
	if json.Unmarshal(raw, &byNUMA) != nil {
		return nil, false
	}
	var all []string
	for _, ids := range byNUMA {
		all = append(all, ids...)
	}
	return all, true
}

// FuzzEncodedPod builds the answers of kubelet's PodResources API (k8s.io/kubelet
// podresources v1) from fuzzed fields with kubelet's own message types, encodes
// them as kubelet does, and reads them as fromAPI does. Properties: the pod's
// name and namespace come back as sent, and its devices come back per
// resource, in the order sent, merged over containers, whatever else the
// message carries (topology, CPU IDs, memory, dynamic resources, fields of
// later API versions), from a Get answer and from a List answer alike.
func FuzzEncodedPod(f *testing.F) {
	f.Add("pod-1", "ns1", "intel.com/intel_sriov_netdevice", "0000:3b:02.2", "0000:af:02.0", "nvidia.com/gpu", "GPU-8b3c", uint8(0xff))
	f.Add("", "", "", "", "", "", "", uint8(0))
	f.Add("p", "n", "r/a", "d1", "d1", "r/a", "d2", uint8(1))
	f.Fuzz(func(t *testing.T, name, namespace, res1, id1, id2, res2, id3 string, shape uint8) {
		pod := &podresourcesapi.PodResources{Name: name, Namespace: namespace, Containers: []*podresourcesapi.ContainerResources{
			{Name: "app", Devices: []*podresourcesapi.ContainerDevices{{ResourceName: res1, DeviceIds: []string{id1, id2}}}},
			{Name: "sidecar", Devices: []*podresourcesapi.ContainerDevices{{ResourceName: res2, DeviceIds: []string{id3}}}},
		}}
		if shape&1 != 0 {
			numa := &podresourcesapi.TopologyInfo{Nodes: []*podresourcesapi.NUMANode{{ID: 0}, {ID: 1}}}
			app := pod.Containers[0]
			app.Devices[0].Topology = numa
			app.CpuIds = []int64{2, 3, 66}
			app.Memory = []*podresourcesapi.ContainerMemory{{MemoryType: "memory", Size: 1 << 30, Topology: numa}}
		}
		if shape&2 != 0 {
			pod.Containers[1].DynamicResources = []*podresourcesapi.DynamicResource{{ClaimName: "gpu", ClaimNamespace: namespace,
				ClaimResources: []*podresourcesapi.ClaimResource{{DriverName: "gpu.example.com", PoolName: "node-1", DeviceName: "gpu-0",
					CdiDevices: []*podresourcesapi.CDIDevice{{Name: "example.com/gpu=gpu-0"}}}}}}
			pod.CpuIds = []int64{1}
		}
		want := map[string][]string{}
		want[res1] = append(want[res1], id1, id2)
		want[res2] = append(want[res2], id3)

		get, err := proto.Marshal(&podresourcesapi.GetPodResourcesResponse{PodResources: pod})
		if err != nil {
			return // a string that is not UTF-8: kubelet cannot send it
		}
		if shape&4 != 0 { // a field of a later API version: skipped
			get = protowire.AppendVarint(protowire.AppendTag(get, 9, protowire.VarintType), 42)
		}
		msgs, err := decodeMessages(get, 1)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("Get answer read as %d messages (%v)", len(msgs), err)
		}
		checkPod(t, msgs[0], name, namespace, want)

		other := &podresourcesapi.PodResources{Name: "other", Namespace: "kube-system", Containers: []*podresourcesapi.ContainerResources{{Name: "c"}}}
		list, err := proto.Marshal(&podresourcesapi.ListPodResourcesResponse{PodResources: []*podresourcesapi.PodResources{other, pod}})
		if err != nil {
			t.Fatal(err)
		}
		msgs, err = decodeMessages(list, 1)
		if err != nil || len(msgs) != 2 {
			t.Fatalf("List answer of two pods read as %d messages (%v)", len(msgs), err)
		}
		checkPod(t, msgs[1], name, namespace, want)
	})
}

// checkPod fails unless msg decodes to the pod name/namespace with devices want.
func checkPod(t *testing.T, msg []byte, name, namespace string, want map[string][]string) {
	t.Helper()
	got, err := decodePod(msg)
	if err != nil {
		t.Fatalf("decodePod of kubelet's message: %v", err)
	}
	if got.name != name || got.namespace != namespace {
		t.Fatalf("pod %q/%q, want %q/%q", got.namespace, got.name, namespace, name)
	}
	if diff := cmp.Diff(want, got.devices); diff != "" {
		t.Fatalf("devices (-sent +read):\n%s", diff)
	}
}
