package attach

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// DeviceSource tells the devices allocated to a pod, by resource name, each
// list in a stable order: kubelet's device plugins' (package podresources),
// and those of the pod's ResourceClaims (Devices, which merges both).
type DeviceSource interface {
	DeviceIDs(ctx context.Context, pod *podnet.Pod) (map[string][]string, error)
}

// DeviceError says a network needs a device of a resource the pod was not given
// (enough of).
type DeviceError struct {
	Network  string
	Resource string
	Reason   string
}

func (e *DeviceError) Error() string {
	return fmt.Sprintf("network %q needs a device of resource %q: %s", e.Network, e.Resource, e.Reason)
}

// PodDeviceIDError says a pod's selection gave a deviceID for a network whose
// NAD names no resource, and the operator has not allowed pods to choose
// devices (allowPodDeviceID). Nothing ties such a device to the pod: kubelet
// never allocated it, so honouring it would let a namespace user point a
// host-device or SR-IOV network at any device of the node.
type PodDeviceIDError struct {
	Pod      podnet.PodRef
	Network  string
	DeviceID string
}

func (e *PodDeviceIDError) Error() string {
	return fmt.Sprintf("pod %s asks for device %q on network %q, which names no device-plugin resource (%s): "+
		"a device chosen by the pod is refused unless the plugin configuration sets \"allowPodDeviceID\": true",
		e.Pod, e.DeviceID, e.Network, podnet.ResourceNameAnnotation)
}

// CNICode reports NetworkRefused: the pod may not use the network as asked.
func (e *PodDeviceIDError) CNICode() uint { return cnicode.NetworkRefused }

// assignDevices gives every attachment from a NAD annotated with
// k8s.v1.cni.cncf.io/resourceName the next device allocated to the pod for
// that resource, so several attachments of one resource each get their own, in the
// sorted order of the device IDs; the cluster network too, when it is such a NAD
// (upstream never gives it one: #501). A selection's deviceID (upstream's
// extension) is ignored when the NAD names a resource, and used when it names
// none only if the configuration sets allowPodDeviceID (upstream always uses
// it); else it is refused (*PodDeviceIDError). The device goes into the
// configuration as deviceID and pciBusID, where SR-IOV and host-device plugins
// read it, and as the deviceID capability argument.
//
// taken are devices attachments of the sandbox already have (a running pod
// that gains a network): they are not given again.
func assignDevices(ctx context.Context, in Input, planned []Planned, taken map[string]bool) error {
	var alloc map[string][]string
	next := map[string]int{}
	for i := range planned {
		p := &planned[i]
		resource, deviceID := "", ""
		if p.NAD != nil {
			resource = p.NAD.Annotations[podnet.ResourceNameAnnotation]
		}
		switch {
		case resource != "":
			if alloc == nil {
				var err error
				if alloc, err = podDevices(ctx, in); err != nil {
					// A failed API read keeps its own CNI code: a transient
					// one is worth the runtime's retry.
					var apiErr *podnet.APIError
					if errors.As(err, &apiErr) {
						return fmt.Errorf("network %q needs a device of resource %q: %w", p.Network, resource, err)
					}
					return &DeviceError{Network: p.Network, Resource: resource, Reason: err.Error()}
				}
			}
			ids := slices.Sorted(slices.Values(alloc[resource]))
			for next[resource] < len(ids) && taken[ids[next[resource]]] {
				next[resource]++
			}
			if next[resource] >= len(ids) {
				reason := "the pod was allocated none, by a device plugin or through a ResourceClaim"
				if len(ids) > 0 {
					reason = fmt.Sprintf("the %d the pod was allocated are taken by its other attachments", len(ids))
				}
				return &DeviceError{Network: p.Network, Resource: resource, Reason: reason}
			}
			deviceID = ids[next[resource]]
			next[resource]++
		case p.Selection != nil && p.Selection.DeviceID != "":
			if !in.Conf.AllowPodDeviceID {
				return &PodDeviceIDError{Pod: in.Req.Pod, Network: p.Network, DeviceID: p.Selection.DeviceID}
			}
			deviceID = p.Selection.DeviceID
		}
		if deviceID == "" {
			continue
		}
		cfg, err := injectDevice(p.Config, deviceID)
		if err != nil {
			return &ConfigError{Network: p.Network, Source: "device injection", Err: err}
		}
		p.Config, p.DeviceID, p.Resource = cfg, deviceID, resource
		p.CapabilityArgs = withArg(p.CapabilityArgs, "deviceID", deviceID)
	}
	return nil
}

func podDevices(ctx context.Context, in Input) (map[string][]string, error) {
	if in.Devices == nil || in.Pod == nil {
		return nil, fmt.Errorf("no device information is available for this pod")
	}
	return in.Devices.DeviceIDs(ctx, in.Pod)
}

// assignDeviceInfoFiles names each attachment's device-info file (D-4.2.1) when it
// has a device or a plugin of it declares the CNIDeviceInfoFile capability, and
// passes the path to those plugins (D-5.1). It runs once interfaces are named:
// the file name includes the interface.
func assignDeviceInfoFiles(in Input, planned []Planned) error {
	for i := range planned {
		p := &planned[i]
		declared, err := declares(p.Config, podnet.DeviceInfoCapability)
		if err != nil {
			return &ConfigError{Network: p.Network, Source: "capabilities", Err: err}
		}
		if p.DeviceID == "" && !declared {
			continue
		}
		ns, name := "", p.Network
		if p.NAD != nil {
			ns, name = p.NAD.Namespace, p.NAD.Name
		}
		p.DeviceInfoFile = podnet.AttachmentInfoFile(in.Conf.DeviceInfoDir, ns, name, in.Req.ContainerID, p.IfName)
		if p.Resource != "" {
			p.DeviceInfoSource = podnet.DevicePluginInfoFile(in.Conf.DeviceInfoDir, p.Resource, p.DeviceID)
		}
		if declared {
			p.CapabilityArgs = withArg(p.CapabilityArgs, podnet.DeviceInfoCapability, p.DeviceInfoFile)
		}
	}
	return nil
}

func withArg(args map[string]json.RawMessage, key string, value any) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(args)+1)
	for k, v := range args {
		out[k] = v
	}
	out[key], _ = json.Marshal(value)
	return out
}

// injectDevice sets deviceID and pciBusID in the configuration, in every plugin of
// a conflist.
func injectDevice(cfg []byte, deviceID string) ([]byte, error) {
	id, _ := json.Marshal(deviceID) // a string always encodes
	return editPlugins(cfg, func(p map[string]json.RawMessage) error {
		p["deviceID"], p["pciBusID"] = id, id
		return nil
	})
}
