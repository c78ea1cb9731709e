package podresources

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// TestCheckpointFormats reads both shapes of kubelet's checkpoint: DeviceIDs by
// NUMA node (current kubelets) and as a plain list (old ones), for the pod's UID
// only, sorted.
func TestCheckpointFormats(t *testing.T) {
	for name, entries := range map[string]string{
		"by NUMA node": `[{"PodUID":"u1","ResourceName":"r/a","DeviceIDs":{"1":["d2"],"0":["d1"]}},{"PodUID":"u2","ResourceName":"r/a","DeviceIDs":{"0":["x"]}}]`,
		"flat list":    `[{"PodUID":"u1","ResourceName":"r/a","DeviceIDs":["d2","d1"]},{"PodUID":"u2","ResourceName":"r/a","DeviceIDs":["x"]}]`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "checkpoint")
			if err := os.WriteFile(path, []byte(`{"Data":{"PodDeviceEntries":`+entries+`},"Checksum":1}`), 0o644); err != nil {
				t.Fatal(err)
			}
			s := Source{Socket: filepath.Join(t.TempDir(), "none.sock"), Checkpoint: path}
			got, err := s.DeviceIDs(context.Background(), &podnet.Pod{Namespace: "ns", Name: "p", UID: "u1"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string][]string{"r/a": {"d1", "d2"}}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestNoSource names both places it looked.
func TestNoSource(t *testing.T) {
	dir := t.TempDir()
	s := Source{Socket: filepath.Join(dir, "kubelet.sock"), Checkpoint: filepath.Join(dir, "checkpoint")}
	if _, err := s.DeviceIDs(context.Background(), &podnet.Pod{}); err == nil {
		t.Fatal("no error without a socket or a checkpoint")
	}
}

// FuzzDecodePod feeds arbitrary bytes, as a broken or hostile socket could send,
// to the protobuf decoding: it must fail cleanly, never panic.
func FuzzDecodePod(f *testing.F) {
	var dev []byte
	dev = protowire.AppendTag(dev, 1, protowire.BytesType)
	dev = protowire.AppendString(dev, "r/a")
	dev = protowire.AppendTag(dev, 2, protowire.BytesType)
	dev = protowire.AppendString(dev, "d1")
	var ctr []byte
	ctr = protowire.AppendTag(ctr, 2, protowire.BytesType)
	ctr = protowire.AppendBytes(ctr, dev)
	pod := getRequest("p", "ns")
	pod = protowire.AppendTag(pod, 3, protowire.BytesType)
	pod = protowire.AppendBytes(pod, ctr)
	f.Add(pod)
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := decodePod(b); err == nil && p.devices == nil {
			t.Fatal("nil device map without an error")
		}
		_, _ = decodeMessages(b, 1)
	})
}
