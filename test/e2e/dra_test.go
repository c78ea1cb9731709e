package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/test/testbed"
)

// Dynamic Resource Allocation (resource.k8s.io/v1) as a DRA driver and the
// scheduler leave it, with no driver running: the test publishes a
// ResourceSlice of node-1's devices, creates ResourceClaims and writes their
// allocation and reservation into their status, and writes the pod's
// status.resourceClaimStatuses as the resource-claim controller does.

const (
	draNICDriver = "vf.polynet.test"
	draGPUDriver = "gpu.polynet.test"
	draResource  = "example.com/dra-nic"
	draAttrRes   = "k8s.cni.cncf.io/resourceName"
	draAttrID    = "k8s.cni.cncf.io/deviceID"
)

// dra is a test's pool of devices on node-1: its name is the test's namespace,
// so tests never see each other's devices.
type dra struct {
	e    *env
	pool string
}

func str(s string) *string { return &s }

// newDRA publishes the test's ResourceSlices on node-1, deleted when the test
// ends: two VFs with both network attributes (their IDs in reverse order of
// their names), a VF with a resource name and no device ID, and, from another
// driver, a GPU with a device ID and no resource name.
func newDRA(e *env) *dra {
	e.t.Helper()
	d := &dra{e: e, pool: e.namespace}
	nic := func(name string, attrs map[string]string) resourcev1.Device {
		dev := resourcev1.Device{Name: name, Attributes: map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{
			"pf": {StringValue: str("ens1f0")}, "numaNode": {IntValue: new(int64)},
		}}
		for k, v := range attrs {
			dev.Attributes[resourcev1.QualifiedName(k)] = resourcev1.DeviceAttribute{StringValue: str(v)}
		}
		return dev
	}
	d.slice(draNICDriver, 1, nic("vf-0", map[string]string{draAttrRes: draResource, draAttrID: "0000:05:00.1"}),
		nic("vf-1", map[string]string{draAttrRes: draResource, draAttrID: "0000:05:00.0"}),
		nic("vf-noid", map[string]string{draAttrRes: draResource}))
	d.slice(draGPUDriver, 1, nic("gpu-0", map[string]string{draAttrID: "GPU-5fd3", "model": "h100"}))
	return d
}

// slice publishes one slice of the pool of driver, at generation gen.
func (d *dra) slice(driver string, gen int64, devices ...resourcev1.Device) {
	e := d.e
	e.t.Helper()
	s := &resourcev1.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: d.pool + "-" + strings.Split(driver, ".")[0]},
		Spec: resourcev1.ResourceSliceSpec{Driver: driver, NodeName: str(testbed.NodeName),
			Pool: resourcev1.ResourcePool{Name: d.pool, Generation: gen, ResourceSliceCount: 1}, Devices: devices},
	}
	if _, err := e.kc.ResourceV1().ResourceSlices().Create(e.ctx, s, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("creating ResourceSlice %s: %v", s.Name, err)
	}
	e.t.Cleanup(func() {
		if err := e.kc.ResourceV1().ResourceSlices().Delete(testbed.Context(e.t), s.Name, metav1.DeleteOptions{}); err != nil {
			e.t.Errorf("deleting ResourceSlice %s: %v", s.Name, err)
		}
	})
}

// claim creates a ResourceClaim and writes its status as the scheduler does:
// allocated on node-1 the devices named ("driver/device" of the test's pool,
// or "driver/pool/device"), and reserved for the pods given.
func (d *dra) claim(name string, devices []string, pods ...*corev1.Pod) {
	e := d.e
	e.t.Helper()
	c := &resourcev1.ResourceClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.namespace},
		Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{
			{Name: "nic", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "vf.polynet.test", AllocationMode: resourcev1.DeviceAllocationModeAll}},
			{Name: "gpu", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "gpu.polynet.test"}},
		}}},
	}
	created, err := e.kc.ResourceV1().ResourceClaims(e.namespace).Create(e.ctx, c, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("creating ResourceClaim %s: %v", name, err)
	}
	alloc := &resourcev1.AllocationResult{NodeSelector: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{testbed.NodeName}}},
	}}}}
	for _, dev := range devices {
		parts := strings.Split(dev, "/")
		driver, pool, device := parts[0], d.pool, parts[len(parts)-1]
		if len(parts) == 3 {
			pool = parts[1]
		}
		request := "nic"
		if driver == draGPUDriver {
			request = "gpu"
		}
		alloc.Devices.Results = append(alloc.Devices.Results, resourcev1.DeviceRequestAllocationResult{
			Request: request, Driver: driver, Pool: pool, Device: device})
	}
	created.Status.Allocation = alloc
	for _, p := range pods {
		created.Status.ReservedFor = append(created.Status.ReservedFor, resourcev1.ResourceClaimConsumerReference{Resource: "pods", Name: p.Name, UID: p.UID})
	}
	if _, err := e.kc.ResourceV1().ResourceClaims(e.namespace).UpdateStatus(e.ctx, created, metav1.UpdateOptions{}); err != nil {
		e.t.Fatalf("writing the allocation of ResourceClaim %s: %v", name, err)
	}
}

// pod creates a pod on node-1 with claims made from a template, as the
// resource-claim controller leaves it: status.resourceClaimStatuses names the
// claims made for it.
func (d *dra) pod(name string, claims []string, annotations map[string]string) (*corev1.Pod, testbed.Sandbox) {
	e := d.e
	e.t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.namespace, Annotations: annotations},
		Spec: corev1.PodSpec{
			NodeName:   testbed.NodeName,
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
	for i := range claims {
		ref := fmt.Sprintf("net%d", i)
		pod.Spec.ResourceClaims = append(pod.Spec.ResourceClaims, corev1.PodResourceClaim{Name: ref, ResourceClaimTemplateName: str("vf-template")})
		pod.Spec.Containers[0].Resources.Claims = append(pod.Spec.Containers[0].Resources.Claims, corev1.ResourceClaim{Name: ref})
	}
	created, err := e.kc.CoreV1().Pods(e.namespace).Create(e.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("creating pod %s: %v", name, err)
	}
	for i, claim := range claims {
		created.Status.ResourceClaimStatuses = append(created.Status.ResourceClaimStatuses,
			corev1.PodResourceClaimStatus{Name: fmt.Sprintf("net%d", i), ResourceClaimName: str(claim)})
	}
	if created, err = e.kc.CoreV1().Pods(e.namespace).UpdateStatus(e.ctx, created, metav1.UpdateOptions{}); err != nil {
		e.t.Fatalf("writing the claim statuses of pod %s: %v", name, err)
	}
	return created, d.sandbox(created, "")
}

// sandbox is a new sandbox of the pod: a network namespace and a container ID
// with the suffix given.
func (d *dra) sandbox(pod *corev1.Pod, suffix string) testbed.Sandbox {
	netns := testbed.NewNetNS(d.e.t)
	return testbed.Sandbox{
		Pod:         testbed.Pod{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID)},
		ContainerID: "ctr-" + pod.Namespace + "-" + pod.Name + suffix, NetNS: netns.Path,
	}
}

// deviceInfo writes the device-info files a driver writes for its devices,
// as a device plugin does (D-4.1).
func deviceInfo(t *testing.T, dir, resource string, ids ...string) {
	for _, id := range ids {
		writeJSON(t, filepath.Join(dir, "dp", strings.ReplaceAll(resource, "/", "-")+"-"+id+"-device.json"),
			map[string]any{"type": "pci", "version": "1.1.0", "pci": map[string]string{"pci-address": id}})
	}
}

// TestDRADevices: a NAD whose resource is a DRA device's
// k8s.cni.cncf.io/resourceName gets the devices of the pod's ResourceClaim, as
// device-plugin devices are given, in sorted order, beside a device plugin's
// device of another network: deviceID, pciBusID and the deviceID capability,
// the device-info file copied and reported in network-status, removed on DEL.
// The GPU of the same claim and a VF without a device ID are passed over: a
// pod asking for a third VF, and one asking for a resource its claim has no
// device of, fail with code 108 naming the resource, before any delegate runs.
func TestDRADevices(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		d := newDRA(e)
		tmp := t.TempDir()
		devinfo, socket := filepath.Join(tmp, "devinfo"), filepath.Join(tmp, "kubelet.sock")
		deviceInfo(t, devinfo, draResource, "0000:05:00.0", "0000:05:00.1")
		deviceInfo(t, devinfo, "example.com/sriov", "0000:03:00.2")
		serveKubelet(t, socket, &kubelet{namespace: e.namespace, name: "pod-1", devices: map[string][]string{"example.com/sriov": {"0000:03:00.2"}}, get: true})
		caps := map[string]any{"capabilities": map[string]bool{"deviceID": true, "CNIDeviceInfoFile": true}}
		e.nad("dra", e.recorderConf(v, "dra", caps), map[string]string{"k8s.v1.cni.cncf.io/resourceName": draResource})
		e.nad("sriov", e.recorderConf(v, "sriov", caps), map[string]string{"k8s.v1.cni.cncf.io/resourceName": "example.com/sriov"})
		e.nad("absent", e.recorderConf(v, "absent", nil), map[string]string{"k8s.v1.cni.cncf.io/resourceName": "example.com/absent"})
		conf := e.multusConf(v, map[string]any{"podResourcesSocket": socket, "deviceInfoDir": devinfo})
		all := []string{draNICDriver + "/vf-0", draNICDriver + "/vf-1", draNICDriver + "/vf-noid", draGPUDriver + "/gpu-0"}

		pod, sb := d.pod("pod-1", []string{"pod-1-net"}, map[string]string{"k8s.v1.cni.cncf.io/networks": "dra,sriov,dra"})
		d.claim("pod-1-net", all, pod)
		e.add(conf, sb)
		adds := e.recordsFor("ADD")
		var files []string
		for i, want := range []string{"0000:05:00.0", "0000:03:00.2", "0000:05:00.1"} {
			var got delegateDevice
			if i >= len(adds) {
				t.Fatalf("%d secondary ADDs, want 3", len(adds))
			}
			if err := adds[i].Conf(&got); err != nil {
				t.Fatal(err)
			}
			if got.DeviceID != want || got.PCIBusID != want || got.RuntimeConfig.DeviceID != want {
				t.Errorf("attachment %d got %+v, want device %s", i, got, want)
			}
			files = append(files, got.RuntimeConfig.File)
			if data, err := os.ReadFile(got.RuntimeConfig.File); err != nil || !strings.Contains(string(data), want) {
				t.Errorf("device-info file %q: %q (%v), want the driver's for %s", got.RuntimeConfig.File, data, err, want)
			}
		}
		st := e.networkStatus("pod-1")
		if len(st) != 4 || !strings.Contains(string(st[1].DeviceInfo), "0000:05:00.0") ||
			!strings.Contains(string(st[2].DeviceInfo), "0000:03:00.2") || !strings.Contains(string(st[3].DeviceInfo), "0000:05:00.1") {
			t.Errorf("network-status device-info: %+v", st)
		}
		e.del(conf, sb)
		for _, f := range files {
			if _, err := os.Stat(f); !os.IsNotExist(err) {
				t.Errorf("device-info file %s survived DEL", f)
			}
		}

		for _, tt := range []struct{ pod, networks, resource string }{
			{"pod-2", "dra,dra,dra", draResource},
			{"pod-3", "dra,absent", "example.com/absent"},
		} {
			pod, sb := d.pod(tt.pod, []string{tt.pod + "-net"}, map[string]string{"k8s.v1.cni.cncf.io/networks": tt.networks})
			d.claim(tt.pod+"-net", all, pod)
			before := len(e.recordsFor("ADD"))
			_, err := e.rt.Add(e.ctx, conf, sb)
			if ce := cniError(t, err); ce.Code != cnicode.DeviceUnavailable || !strings.Contains(ce.Msg, tt.resource) {
				t.Errorf("ADD of %s (%s): %v, want code 108 naming %s\nlog:\n%s", tt.pod, tt.networks, err, tt.resource, e.log())
			}
			if n := len(e.recordsFor("ADD")) - before; n != 0 {
				t.Errorf("%s: %d delegates ran", tt.pod, n)
			}
			if _, err := os.Stat(e.recordFile(sb)); !os.IsNotExist(err) {
				t.Errorf("%s: attachment record left after the failed ADD (%v)", tt.pod, err)
			}
		}
	})
}

// draReads counts the requests of kinds that read the pod, its NADs, claims
// and slices live: what a daemon whose caches hold them never sends.
func draReads(perKind map[string]int) int {
	return perKind["get pods"] + perKind["get network-attachment-definitions"] + perKind["get resourceclaims"] + perKind["list resourceslices"]
}

// addCounting runs ADD of sb and returns the daemon's requests received while
// it ran, by kind.
func (e *env) addCounting(conf []byte, sb testbed.Sandbox) map[string]int {
	e.t.Helper()
	start := time.Now()
	e.add(conf, sb)
	end := time.Now()
	perKind := map[string]int{}
	for _, r := range daemonRequests(e.t, e.cp, e.daemon, start) {
		if r.Received.Before(end) {
			perKind[r.Kind()]++
		}
	}
	return perKind
}

// TestThickDRAAPIRequests measures what an ADD of a pod with a DRA network
// costs the daemon in API requests. Once its caches hold the pod, the NAD, the
// claim and the node's slices, nothing is read: the status patch is the one
// request, as for any pod. With the watches of claims and slices held back
// by the proxy (a claim allocated and a slice published a moment ago), the
// claim costs one live read and its pool one list. The figures are logged.
func TestThickDRAAPIRequests(t *testing.T) {
	const v = "1.0.0"
	e := thickEnv(t, nil)
	proxy := testbed.StartAPIProxy(t, e.cp)
	if err := e.daemon.UseAPIProxy(proxy); err != nil {
		t.Fatal(err)
	}
	d := newDRA(e)
	e.nad("dra", e.recorderConf(v, "dra", nil), map[string]string{"k8s.v1.cni.cncf.io/resourceName": draResource})
	noKubelet := filepath.Join(t.TempDir(), "absent")
	conf := e.multusConf(v, map[string]any{"podResourcesSocket": noKubelet, "kubeletCheckpoint": noKubelet})
	ann := map[string]string{"k8s.v1.cni.cncf.io/networks": "dra"}

	// The caches fill within moments: the first ADD that reads nothing live
	// is the figure.
	pod, _ := d.pod("warm", []string{"warm-net"}, ann)
	d.claim("warm-net", []string{draNICDriver + "/vf-0", draGPUDriver + "/gpu-0"}, pod)
	var warm map[string]int
	for i := 0; ; i++ {
		sb := d.sandbox(pod, fmt.Sprintf("-%d", i))
		warm = e.addCounting(conf, sb)
		e.del(conf, sb)
		if draReads(warm) == 0 {
			t.Logf("ADD with warm caches (attempt %d): %v", i+1, warm)
			break
		}
		t.Logf("ADD %d read live (the caches were filling): %v", i+1, warm)
	}
	if warm["patch pods/status"] != 1 {
		t.Errorf("warm ADD: %v, want the one status patch", warm)
	}

	proxy.Hold("resourceclaims")
	proxy.Hold("resourceslices")
	cold := &dra{e: e, pool: e.namespace + "-new"}
	cold.slice(draNICDriver, 1, resourcev1.Device{Name: "vf-9", Attributes: map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{
		draAttrRes: {StringValue: str(draResource)}, draAttrID: {StringValue: str("0000:06:00.9")}}})
	pod, sb := cold.pod("cold", []string{"cold-net"}, ann)
	cold.claim("cold-net", []string{draNICDriver + "/vf-9"}, pod)
	lagging := e.addCounting(conf, sb)
	proxy.ReleaseAll()
	t.Logf("ADD with the claim and slice caches lagging: %v", lagging)
	if lagging["get resourceclaims"] != 1 || lagging["list resourceslices"] != 1 {
		t.Errorf("ADD with lagging caches: %v, want one live read of the claim and one list of its pool's slices", lagging)
	}
	adds := e.recordsFor("ADD")
	var got struct {
		DeviceID string `json:"deviceID"`
	}
	if err := adds[len(adds)-1].Conf(&got); err != nil || got.DeviceID != "0000:06:00.9" {
		t.Errorf("the lagging ADD gave device %q (%v), want the claim's 0000:06:00.9", got.DeviceID, err)
	}
	e.del(conf, sb)
}
