package podnet

import (
	"slices"
	"strings"
)

// Dynamic Resource Allocation (resource.k8s.io/v1): what the engine knows of a
// pod's ResourceClaims and of the ResourceSlices that describe their devices.
// A device is offered to the pod's networks only when its slice gives it both
// attributes below, the DRA form of a device plugin's resource name and device
// ID.
const (
	// DeviceResourceAttribute is the device attribute that names the resource a
	// NAD's k8s.v1.cni.cncf.io/resourceName annotation asks for.
	DeviceResourceAttribute = "k8s.cni.cncf.io/resourceName"
	// DeviceIDAttribute is the device attribute that gives the device's ID, as
	// a device plugin gives it (a PCI address for SR-IOV).
	DeviceIDAttribute = "k8s.cni.cncf.io/deviceID"
)

// Claim is what the engine knows of a ResourceClaim: the devices allocated to
// it, and the pods it is reserved for.
type Claim struct {
	Namespace string
	Name      string
	// Allocated is set once the scheduler allocated the claim.
	Allocated bool
	// ReservedFor are the UIDs of the pods that may use the claim.
	ReservedFor []string
	// Devices are the allocation's results, in the claim's order.
	Devices []ClaimDevice
}

// ReservedForPod reports whether the pod of this UID may use the claim.
func (c *Claim) ReservedForPod(uid string) bool { return slices.Contains(c.ReservedFor, uid) }

// ClaimDevice is one result of a claim's allocation: a device of a driver's
// pool, for one request of the claim.
type ClaimDevice struct {
	Request string
	Driver  string
	Pool    string
	Device  string
	// AdminAccess marks a device allocated for monitoring or maintenance,
	// beside the users it may have: not a device of the pod's own.
	AdminAccess bool
}

// ResourceSlice is what the engine knows of a ResourceSlice: part of a
// driver's pool of devices, at one generation of the pool.
type ResourceSlice struct {
	Driver     string
	Pool       string
	Generation int64
	Devices    []SliceDevice
}

// SliceDevice is one device a slice describes, with its string attributes by
// fully qualified name (an adapter may keep only those the engine reads).
type SliceDevice struct {
	Name       string
	Attributes map[string]string
}

// SetAttribute records a string attribute of the device, named as the slice
// of driver names it (QualifiedAttribute).
func (d *SliceDevice) SetAttribute(driver, name, value string) {
	if d.Attributes == nil {
		d.Attributes = map[string]string{}
	}
	d.Attributes[QualifiedAttribute(driver, name)] = value
}

// QualifiedAttribute is a device attribute's fully qualified name: a name
// without a domain is in the driver's (resource.k8s.io/v1).
func QualifiedAttribute(driver, name string) string {
	if strings.Contains(name, "/") {
		return name
	}
	return driver + "/" + name
}

// ClaimNames returns the non-empty names, each once, in their first order: a
// pod names a claim in its spec and again in its status.
func ClaimNames(names ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
