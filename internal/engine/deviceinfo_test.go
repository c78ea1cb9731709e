package engine

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
)

// TestAddDeviceInfo proves the device-info flow through ADD and DEL: the device
// plugin's file for the device kubelet gave the pod is copied to the
// attachment's own file before its delegate runs (D-4.2.1), the file's content,
// as the chain left it, is the attachment's "device-info" in network-status
// (D-6.1.1), attachments without a device report none, and DEL deletes the file
// (D-4.2.1).
func TestAddDeviceInfo(t *testing.T) {
	const (
		resource = "intel.com/sriov"
		vf       = "0000:03:00.1"
		dpInfo   = `{ "type": "pci", "version": "1.1.0", "pci": { "pci-address": "0000:03:00.1" } }`
		compact  = `{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:03:00.1"}}`
	)
	dir := t.TempDir()
	devDir := filepath.Join(dir, "devinfo")
	conf := defaultConf(t, dir, `,"deviceInfoDir":`+quote(devDir))
	kube := standardKube()
	kube.nads["ns1/net-a"].Annotations = map[string]string{podnet.ResourceNameAnnotation: resource}
	src := podnet.DevicePluginInfoFile(devDir, resource, vf)
	file := filepath.Join(devDir, "cni", "ns1-net-a-c1_net1")
	del := &fakeDelegates{}
	e := newEngine(kube, del, conf)
	files := filesOf(e)
	files.put(src, []byte(dpInfo))
	var atAdd string
	del.beforeAdd = func(_ podnet.Sandbox, a podnet.Attachment) {
		if a.Network != "ns1/net-a" {
			return
		}
		if a.DeviceInfoFile != file {
			t.Errorf("attachment's device-info file = %q, want %q", a.DeviceInfoFile, file)
		}
		data, ok := files.get(file)
		if !ok {
			t.Errorf("D-4.2.1 no device-info file %s when the delegate runs", file)
		}
		atAdd = string(data)
	}
	devs := &fakeDevices{ids: map[string][]string{resource: {vf}}}
	e.Devices = devs
	if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if atAdd != dpInfo {
		t.Errorf("D-4.2.1 file content at ADD = %q, want the device plugin's %q", atAdd, dpInfo)
	}
	if devs.calls != 1 {
		t.Errorf("device source called %d times, want 1", devs.calls)
	}
	if len(kube.patches) != 1 {
		t.Fatalf("network-status patches: %d, want 1", len(kube.patches))
	}
	var entries []netstatus.Entry
	if err := json.Unmarshal([]byte(kube.patches[0].Value), &entries); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, en := range entries {
		got[en.Name] = string(en.DeviceInfo)
	}
	want := map[string]string{"cbr0": "", "ns1/net-a": compact, "ns1/net-b": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("D-6.1.1 device-info per entry (-want +got):\n%s", diff)
	}

	if err := e.Del(t.Context(), newRequest(t, request.Del, podArgs), conf); err != nil {
		t.Fatalf("Del: %v", err)
	}
	if data, ok := files.get(file); ok {
		t.Errorf("D-4.2.1 device-info file after DEL: %q, want none", data)
	}
	if _, ok := files.get(src); !ok {
		t.Error("the device plugin's own file must stay")
	}
}

// TestAddDeviceInfoUnreadable proves what happens when the attachment's
// device-info file cannot be reported after ADD (here the chain left a file
// that is not JSON; the node's adapter also refuses one over its size bound):
// the attachment stays, network-status is written without that entry's
// device-info, and a Warning event on the pod names the network and says why,
// so the operator learns of it rather than a log line only.
func TestAddDeviceInfoUnreadable(t *testing.T) {
	dir := t.TempDir()
	devDir := filepath.Join(dir, "devinfo")
	conf := defaultConf(t, dir, `,"deviceInfoDir":`+quote(devDir))
	kube := standardKube()
	kube.nads["ns1/net-a"].Annotations = map[string]string{podnet.ResourceNameAnnotation: "intel.com/sriov"}
	file := filepath.Join(devDir, "cni", "ns1-net-a-c1_net1")
	del := &fakeDelegates{}
	e := newEngine(kube, del, conf)
	files := filesOf(e)
	del.beforeAdd = func(_ podnet.Sandbox, a podnet.Attachment) {
		if a.Network == "ns1/net-a" {
			files.put(file, []byte("not a device-info map"))
		}
	}
	e.Devices = &fakeDevices{ids: map[string][]string{"intel.com/sriov": {"0000:03:00.1"}}}
	if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if len(kube.patches) != 1 {
		t.Fatalf("network-status patches: %d, want 1", len(kube.patches))
	}
	var entries []netstatus.Entry
	if err := json.Unmarshal([]byte(kube.patches[0].Value), &entries); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		names = append(names, en.Name)
		if en.DeviceInfo != nil {
			t.Errorf("entry %s has device-info %s, want none", en.Name, en.DeviceInfo)
		}
	}
	if diff := cmp.Diff([]string{"cbr0", "ns1/net-a", "ns1/net-b"}, names); diff != "" {
		t.Errorf("network-status entries (-want +got):\n%s", diff)
	}
	var warned bool
	for _, ev := range kube.events {
		if ev.Type == EventWarning && ev.Reason == ReasonStatusFailed &&
			strings.Contains(ev.Message, "ns1/net-a") && strings.Contains(ev.Message, file) {
			warned = true
		}
	}
	if !warned {
		t.Errorf("events %+v lack a Warning %s naming ns1/net-a and %s", kube.events, ReasonStatusFailed, file)
	}
}
