// Package deviceinfo handles the files of the NPWG device-info specification v1.1.0:
// a device plugin describes each device it hands out in a file (D-4.1); the
// meta-plugin copies it to a file of the attachment's own (D-4.2, D-4.2.1), tells
// the delegates where through the CNIDeviceInfoFile capability (D-5.1), reports
// its content in network-status (D-6.1.1) and deletes it on DEL (D-4.2.1).
package deviceinfo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/polynet-cni/polynet/internal/atomicfile"
)

// Capability is the runtimeConfig key of the device-info file (D-5.1).
const Capability = "CNIDeviceInfoFile"

// DevicePluginFile is the device plugin's file for one device (D-4.1):
// <dir>/dp/<resourceName>-<deviceID>-device.json, "/" in the resource name
// replaced by "-".
func DevicePluginFile(dir, resourceName, deviceID string) string {
	return filepath.Join(dir, "dp", strings.ReplaceAll(resourceName, "/", "-")+"-"+deviceID+"-device.json")
}

// AttachmentFile is an attachment's own file (D-4.2): unique per attachment, named
// as upstream names it, <namespace>-<network>-<containerID>_<ifname>.
func AttachmentFile(dir, namespace, network, containerID, ifName string) string {
	name := fmt.Sprintf("%s-%s-%s_%s", namespace, network, containerID, ifName)
	return filepath.Join(dir, "cni", strings.ReplaceAll(name, "/", "-"))
}

// Copy copies the device plugin's file to the attachment's, creating the folder
// (D-4.2.1 MUST). A missing source is not an error: a device plugin MAY write no
// file (D-4.1), and the delegates may write the attachment's file themselves.
func Copy(src, dst string) error {
	data, err := os.ReadFile(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("device-info file: %w", err)
	}
	if !json.Valid(data) {
		return fmt.Errorf("device-info file %s is not JSON", src)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("device-info folder: %w", err)
	}
	if err := atomicfile.Write(dst, data, 0o644); err != nil {
		return fmt.Errorf("device-info file: %w", err)
	}
	return nil
}

// Read returns the attachment file's device-info map, compacted, or nil when the
// file does not exist (D-6.1.1).
func Read(path string) (json.RawMessage, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, fmt.Errorf("device-info file %s: %w", path, err)
	}
	return buf.Bytes(), nil
}

// Remove deletes the attachment's file (D-4.2.1); a missing file is fine.
func Remove(path string) error {
	if path == "" {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
