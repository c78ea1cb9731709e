package podnet

import (
	"fmt"
	"path/filepath"
	"strings"
)

// The names of the NPWG device-info specification v1.1.0's files and capability:
// planning computes them, package hostfiles reads and writes the files.

// DeviceInfoCapability is the runtimeConfig key of the device-info file (D-5.1).
const DeviceInfoCapability = "CNIDeviceInfoFile"

// DevicePluginInfoFile is the device plugin's file for one device (D-4.1):
// <dir>/dp/<resourceName>-<deviceID>-device.json, "/" in the resource name
// replaced by "-".
func DevicePluginInfoFile(dir, resourceName, deviceID string) string {
	return filepath.Join(dir, "dp", strings.ReplaceAll(resourceName, "/", "-")+"-"+deviceID+"-device.json")
}

// AttachmentInfoFile is an attachment's own file (D-4.2): unique per attachment, named
// as upstream names it, <namespace>-<network>-<containerID>_<ifname>.
func AttachmentInfoFile(dir, namespace, network, containerID, ifName string) string {
	name := fmt.Sprintf("%s-%s-%s_%s", namespace, network, containerID, ifName)
	return filepath.Join(dir, "cni", strings.ReplaceAll(name, "/", "-"))
}
