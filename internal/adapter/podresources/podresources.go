// Package podresources finds the devices kubelet allocated to a pod, per resource name
// (an SR-IOV VF pool, say), so that a NAD annotated with
// k8s.v1.cni.cncf.io/resourceName hands its delegate the pod's device. It asks
// kubelet's PodResources gRPC API (k8s.io/kubelet podresources v1; see grpc.go)
// and, when that socket is not there, reads kubelet's device-plugin checkpoint file.
package podresources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// maxMessage bounds kubelet's answer, as kubelet's own clients do.
const maxMessage = 16 << 20

// Source reads allocations from kubelet.
type Source struct {
	// Socket is kubelet's PodResources socket.
	Socket string
	// Checkpoint is kubelet's device-plugin checkpoint file.
	Checkpoint string
	// Timeout bounds the gRPC call.
	Timeout time.Duration
}

// DeviceIDs returns the device IDs allocated to the pod, by resource name, each
// list sorted so that attachments take them in a stable order.
func (s Source) DeviceIDs(ctx context.Context, pod *podnet.Pod) (map[string][]string, error) {
	var out map[string][]string
	var err error
	if _, statErr := os.Stat(s.Socket); statErr == nil {
		out, err = s.fromAPI(ctx, pod.Ref())
	} else {
		out, err = s.fromCheckpoint(pod.Ref())
	}
	if err != nil {
		return nil, err
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out, nil
}

func (s Source) fromAPI(ctx context.Context, pod podnet.PodRef) (map[string][]string, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Get asks for this pod alone; kubelets without it answer Unimplemented, and
	// List, which every kubelet has, returns all pods of the node.
	answer, err := s.call(ctx, "Get", getRequest(pod.Name, pod.Namespace))
	var ge *grpcError
	switch {
	case err == nil:
		msgs, err := decodeMessages(answer, 1)
		if err != nil || len(msgs) == 0 {
			return map[string][]string{}, err
		}
		p, err := decodePod(msgs[0])
		return p.devices, err
	case !errors.As(err, &ge) || ge.Code != grpcUnimplemented:
		return nil, fmt.Errorf("kubelet PodResources Get of pod %s at %s: %w", pod, s.Socket, err)
	}
	answer, err = s.call(ctx, "List", nil)
	if err != nil {
		return nil, fmt.Errorf("kubelet PodResources List at %s: %w", s.Socket, err)
	}
	msgs, err := decodeMessages(answer, 1)
	if err != nil {
		return nil, fmt.Errorf("kubelet PodResources List: %w", err)
	}
	for _, m := range msgs {
		p, err := decodePod(m)
		if err != nil {
			return nil, fmt.Errorf("kubelet PodResources List: %w", err)
		}
		if p.name == pod.Name && p.namespace == pod.Namespace {
			return p.devices, nil
		}
	}
	return map[string][]string{}, nil
}

// checkpoint is the part of kubelet's checkpoint file we read. DeviceIDs is a map
// from NUMA node to IDs in current kubelets and a plain list in old ones.
type checkpoint struct {
	Data struct {
		PodDeviceEntries []struct {
			PodUID       string          `json:"PodUID"`
			ResourceName string          `json:"ResourceName"`
			DeviceIDs    json.RawMessage `json:"DeviceIDs"`
		} `json:"PodDeviceEntries"`
	} `json:"Data"`
}

func (s Source) fromCheckpoint(pod podnet.PodRef) (map[string][]string, error) {
	data, err := os.ReadFile(s.Checkpoint)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("neither kubelet's PodResources socket %s nor its checkpoint %s exists", s.Socket, s.Checkpoint)
	}
	if err != nil {
		return nil, err
	}
	var cp checkpoint
	if err := json.Unmarshal(data, &cp); err != nil {
		return nil, fmt.Errorf("kubelet checkpoint %s: %w", s.Checkpoint, err)
	}
	out := map[string][]string{}
	for _, e := range cp.Data.PodDeviceEntries {
		if e.PodUID != pod.UID {
			continue
		}
		var byNUMA map[string][]string
		var flat []string
		switch {
		case json.Unmarshal(e.DeviceIDs, &byNUMA) == nil:
			for _, ids := range byNUMA {
				out[e.ResourceName] = append(out[e.ResourceName], ids...)
			}
		case json.Unmarshal(e.DeviceIDs, &flat) == nil:
			out[e.ResourceName] = append(out[e.ResourceName], flat...)
		default:
			return nil, fmt.Errorf("kubelet checkpoint %s: DeviceIDs of %s is neither a map nor a list", s.Checkpoint, e.ResourceName)
		}
	}
	return out, nil
}
