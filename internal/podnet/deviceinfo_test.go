package podnet

import "testing"

// TestPathHelpers proves the file names of D-4.1 and D-4.2: the device plugin's
// file is <dir>/dp/<resource>-<deviceID>-device.json with "/" in the resource
// replaced by "-", and the attachment's file is
// <dir>/cni/<namespace>-<network>-<containerID>_<ifname>, upstream's unique
// name, with "/" in any part replaced so it stays one file of the folder.
func TestPathHelpers(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{
			name: "D-4.1 device plugin file, slash in resource replaced",
			got:  DevicePluginInfoFile("/run/devinfo", "intel.com/sriov_netdevice", "0000:03:00.1"),
			want: "/run/devinfo/dp/intel.com-sriov_netdevice-0000:03:00.1-device.json",
		},
		{
			name: "D-4.1 device plugin file, every slash replaced",
			got:  DevicePluginInfoFile("/run/devinfo", "a/b/c", "7"),
			want: "/run/devinfo/dp/a-b-c-7-device.json",
		},
		{
			name: "D-4.2.1 attachment file of a NAD",
			got:  AttachmentInfoFile("/run/devinfo", "ns1", "sriov-net", "c1", "net1"),
			want: "/run/devinfo/cni/ns1-sriov-net-c1_net1",
		},
		{
			name: "D-4.2.1 attachment file without namespace, network with a slash",
			got:  AttachmentInfoFile("/run/devinfo", "", "kube-system/cluster", "c1", "eth0"),
			want: "/run/devinfo/cni/-kube-system-cluster-c1_eth0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("path = %q, want %q", tt.got, tt.want)
			}
		})
	}
}

// TestCopy proves D-4.2.1: Copy creates the attachment file's folder and copies
// the device plugin's file byte for byte; a missing source is not an error (a
// device plugin MAY write no file, D-4.1) and creates nothing; a source that is
// not JSON (D-4.0) is an error and creates nothing.
