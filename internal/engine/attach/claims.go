package attach

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// ClaimSource reads what Dynamic Resource Allocation (resource.k8s.io/v1) gave
// a pod: its ResourceClaims, and the ResourceSlices that describe the devices
// allocated to them.
type ClaimSource interface {
	// Claim reads the ResourceClaim name of the pod's namespace; a missing one
	// is a *podnet.NotFoundError. An adapter that serves from a cache reads
	// the claim live when its copy is not allocated or not reserved for
	// pod.UID yet: the cache may lag behind the scheduler.
	Claim(ctx context.Context, pod podnet.PodRef, name string) (*podnet.Claim, error)
	// Slices returns the ResourceSlices of one pool of a driver. An adapter
	// that serves from a cache reads them live when its copy lacks one of
	// devices, the pool's devices the pod was given.
	Slices(ctx context.Context, driver, pool string, devices []string) ([]podnet.ResourceSlice, error)
}

// Devices is the engine's DeviceSource: the devices kubelet's device plugins
// allocated to the pod, merged with the network devices of the pod's
// ResourceClaims. Claims are read only for a pod that names some, and only
// when a network asks for a device.
type Devices struct {
	// Kubelet reads device plugins' allocations.
	Kubelet DeviceSource
	// Claims reads DRA objects; nil when the API server serves none (an older
	// cluster, or no API server at all).
	Claims ClaimSource
	// Log says which claims and devices were passed over, and why.
	Log *slog.Logger
}

// DeviceIDs returns the pod's devices by resource name, each list sorted. A
// failure to ask kubelet fails the call unless the pod's claims gave devices:
// a pod that has only DRA devices needs no device plugin.
func (d Devices) DeviceIDs(ctx context.Context, pod *podnet.Pod) (map[string][]string, error) {
	var fromKubelet map[string][]string
	var kubeletErr error
	if d.Kubelet != nil {
		fromKubelet, kubeletErr = d.Kubelet.DeviceIDs(ctx, pod)
	}
	if d.Claims == nil || len(pod.Claims) == 0 {
		if d.Kubelet == nil {
			return map[string][]string{}, nil
		}
		return fromKubelet, kubeletErr
	}
	fromClaims, err := ClaimDevices(ctx, d.Claims, pod, d.log())
	if err != nil {
		return nil, err
	}
	if kubeletErr != nil {
		if len(fromClaims) == 0 {
			return nil, kubeletErr
		}
		d.log().Warn("kubelet's device-plugin allocations could not be read; the pod's devices are those of its ResourceClaims", "error", kubeletErr)
		fromKubelet = nil
	}
	return mergeDevices(fromKubelet, fromClaims), nil
}

func (d Devices) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

// pool names one pool of one driver.
type pool struct{ driver, name string }

// claimed is one allocation result of one of the pod's claims.
type claimed struct {
	claim string
	podnet.ClaimDevice
}

// ClaimDevices returns the network devices of the pod's ResourceClaims by
// resource name, each list sorted: the devices allocated to them whose
// ResourceSlice gives both podnet.DeviceResourceAttribute and
// podnet.DeviceIDAttribute. The others are passed over: a GPU in the same
// claim, a device no slice of its pool's newest generation describes, a claim
// that does not exist, is not allocated or is not reserved for the pod, a
// device allocated with admin access, and a device ID with a "/". Each is logged, none is an error: a
// network that needed the device then fails for want of it (*DeviceError).
// Only a failed read is an error.
func ClaimDevices(ctx context.Context, src ClaimSource, pod *podnet.Pod, log *slog.Logger) (map[string][]string, error) {
	var results []claimed
	wanted := map[pool][]string{}
	var pools []pool
	for _, name := range pod.Claims {
		claim, err := src.Claim(ctx, pod.Ref(), name)
		var nf *podnet.NotFoundError
		switch {
		case errors.As(err, &nf):
			log.Warn("ResourceClaim not found; its devices are not offered to networks", "claim", name)
			continue
		case err != nil:
			return nil, fmt.Errorf("ResourceClaim %s/%s: %w", pod.Namespace, name, err)
		case !claim.Allocated:
			log.Warn("ResourceClaim not allocated; its devices are not offered to networks", "claim", name)
			continue
		case !claim.ReservedForPod(pod.UID):
			log.Warn("ResourceClaim not reserved for the pod; its devices are not offered to networks", "claim", name, "podUID", pod.UID)
			continue
		}
		for _, dev := range claim.Devices {
			if dev.AdminAccess {
				log.Info("device allocated with admin access, not offered to networks", "claim", name, "driver", dev.Driver, "pool", dev.Pool, "device", dev.Device)
				continue
			}
			p := pool{dev.Driver, dev.Pool}
			if _, ok := wanted[p]; !ok {
				pools = append(pools, p)
			}
			wanted[p] = append(wanted[p], dev.Device)
			results = append(results, claimed{claim: name, ClaimDevice: dev})
		}
	}
	described := map[pool]map[string]podnet.SliceDevice{}
	for _, p := range pools {
		found, err := src.Slices(ctx, p.driver, p.name, wanted[p])
		if err != nil {
			return nil, fmt.Errorf("ResourceSlices of pool %q of driver %s: %w", p.name, p.driver, err)
		}
		described[p] = newestDevices(found, p)
	}
	out := map[string][]string{}
	for _, r := range results {
		dev, ok := described[pool{r.Driver, r.Pool}][r.Device]
		if !ok {
			log.Warn("no ResourceSlice of the pool's newest generation describes the allocated device; it is not offered to networks",
				"claim", r.claim, "request", r.Request, "driver", r.Driver, "pool", r.Pool, "device", r.Device)
			continue
		}
		resource, id := dev.Attributes[podnet.DeviceResourceAttribute], dev.Attributes[podnet.DeviceIDAttribute]
		if resource == "" || id == "" {
			log.Debug("allocated device without network attributes, not offered to networks",
				"claim", r.claim, "driver", r.Driver, "pool", r.Pool, "device", r.Device)
			continue
		}
		if strings.Contains(id, "/") {
			// The ID names the device plugin's device-info file
			// (podnet.DevicePluginInfoFile): it must stay one name in its
			// folder.
			log.Warn("allocated device's ID has a \"/\"; it is not offered to networks",
				"claim", r.claim, "driver", r.Driver, "pool", r.Pool, "device", r.Device, "deviceID", id)
			continue
		}
		out[resource] = append(out[resource], id)
	}
	return mergeDevices(out, nil), nil
}

// newestDevices returns the devices of p's slices of the pool's newest
// generation, by name: a driver that republishes a pool raises its generation,
// and slices of older generations are on their way out.
func newestDevices(all []podnet.ResourceSlice, p pool) map[string]podnet.SliceDevice {
	var newest int64
	for _, s := range all {
		if s.Driver == p.driver && s.Pool == p.name {
			newest = max(newest, s.Generation)
		}
	}
	out := map[string]podnet.SliceDevice{}
	for _, s := range all {
		if s.Driver != p.driver || s.Pool != p.name || s.Generation != newest {
			continue
		}
		for _, dev := range s.Devices {
			out[dev.Name] = dev
		}
	}
	return out
}

// mergeDevices returns a's and b's devices by resource, each list sorted and
// each device once.
func mergeDevices(a, b map[string][]string) map[string][]string {
	out := make(map[string][]string, len(a)+len(b))
	for _, m := range []map[string][]string{a, b} {
		for resource, ids := range m {
			out[resource] = append(out[resource], ids...)
		}
	}
	for resource, ids := range out {
		slices.Sort(ids)
		out[resource] = slices.Compact(ids)
	}
	return out
}
