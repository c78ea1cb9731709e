package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/polynet-cni/polynet/test/testbed"
)

// The Dynamic Resource Allocation objects of BenchmarkDaemonScaleDRA's
// cluster: draClaims ResourceClaims, one in draOnNodeEvery allocated on
// testbed.NodeName (a VF of one of its draNodePFs slices, reserved for one of
// its pods), seven in ten allocated on one of draOtherNodes other nodes, the
// rest not allocated; the node's VF slices, a slice of GPUs (a device ID, no
// resource name) and one of NICs without the network attributes; a slice of
// draOtherVFs VFs on each other node.
const (
	draClaims      = 2000
	draOnNodeEvery = 10
	draNodePFs     = 4
	draNodeVFs     = 64 // a slice; draNodePFs*draNodeVFs >= the node's claims
	draOtherNodes  = 200
	draOtherVFs    = 16
	draNICDriver   = "vf.polynet.bench"
	draGPUDriver   = "gpu.polynet.bench"
	draResource    = "example.com/sriov-nic"
	// thickDRA is the daemon of the cluster with the DRA objects.
	thickDRA = "thick+DRA"
)

// draSlices is how many ResourceSlices populateDRA creates, draNodeSlices
// of them on testbed.NodeName.
const (
	draNodeSlices = draNodePFs + 2
	draSlices     = draNodeSlices + draOtherNodes
)

// BenchmarkDaemonScaleDRA measures what the daemon's caches of
// ResourceClaims (every namespace's, trimmed) and of its node's
// ResourceSlices cost at rest: two clusters (a control plane each) hold the
// node of BenchmarkDaemonScale (scalePods pods, scaleNADs NADs), one of them
// also draClaims claims and draSlices slices (see draClaims); a daemon each.
// Every round restarts each daemon in a new random order and measures it as
// BenchmarkDaemonScale measures its idle daemon (scaleIdle), so the machine's
// drift hits both alike; the results give both and, per round, their ratio.
// BENCH_IDLE_ROUNDS rounds (5 unless set) per b.N. With BENCH_PROFILE_DIR
// set, the heap profiles of both are written there at every round.
//
//	go test -run '^$' -bench DaemonScaleDRA -benchtime 1x -timeout 40m ./test/bench/
func BenchmarkDaemonScaleDRA(b *testing.B) {
	testbed.Require(b)
	ctx := testbed.Context(b)
	rounds := envCount(b, "BENCH_IDLE_ROUNDS", 5)
	type node struct {
		variant, id string
		d           *testbed.Daemon
		pprofURL    string
	}
	var nodes []*node
	for _, variant := range []string{thick, thickDRA} {
		cp := testbed.StartControlPlane(b)
		kc, nc := cp.AdminClients(b)
		pods := populateNode(ctx, b, kc, nc, filepath.Join(b.TempDir(), "records"))
		if variant == thickDRA {
			populateDRA(ctx, b, kc, pods)
		}
		port := loopbackPort(b)
		d := testbed.StartDaemon(b, cp, testbed.DaemonOptions{Config: map[string]any{
			"metricsPort": port, "metricsAddress": "127.0.0.1", "enablePprof": true,
		}})
		nodes = append(nodes, &node{variant: variant, id: map[string]string{thick: "nodra", thickDRA: "dra"}[variant],
			d: d, pprofURL: fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap", port)})
	}
	idle := map[string]map[string][]float64{thick: {}, thickDRA: {}}
	for b.Loop() {
		for round := range rounds {
			rand.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
			for _, n := range nodes {
				// A daemon that has served no heap profile, its caches
				// filled by its first list.
				if err := n.d.Restart(); err != nil {
					b.Fatal(err)
				}
				benchLog("round %d, %s (daemon pid %d)", round, n.variant, n.d.Process.PID())
				for k, v := range scaleIdle(b, n.d.Process.PID(), n.pprofURL) {
					idle[n.variant][k] = append(idle[n.variant][k], v)
				}
				saveProfile(b, n.pprofURL, fmt.Sprintf("daemon-heap-idle-%s-%d.pb.gz", n.id, round))
			}
		}
	}
	for _, n := range nodes {
		// The API server serves resource.k8s.io/v1: both daemons run the
		// caches, empty in the cluster without DRA objects.
		if log, err := os.ReadFile(filepath.Join(n.d.Dir, "daemon.log")); err != nil || strings.Contains(string(log), "does not serve") {
			b.Fatalf("%s: the daemon runs without the ResourceClaim caches (%v)", n.variant, err)
		}
	}
	reportScaleDRA(b, idle)
}

// reportScaleDRA writes the figures of both daemons and their ratio per
// round, and logs and reports the medians.
func reportScaleDRA(b *testing.B, idle map[string]map[string][]float64) {
	c := fmt.Sprintf("%d pods, %d NADs; +DRA: %d claims, %d slices", scalePods, scaleNADs, draClaims, draSlices)
	for _, m := range idleMetrics {
		none, dra := idle[thick][m.metric], idle[thickDRA][m.metric]
		writeResult(b, Result{Bench: "daemon", Case: c, Variant: thick, Metric: m.metric, Unit: m.unit, Samples: none})
		writeResult(b, Result{Bench: "daemon", Case: c, Variant: thickDRA, Metric: m.metric, Unit: m.unit, Samples: dra})
		if m.unit != "MiB" {
			continue // no ratio of CPU times near zero
		}
		ratios := make([]float64, len(none))
		for i := range none {
			ratios[i] = dra[i] / none[i]
		}
		writeResult(b, Result{Bench: "daemon", Case: c, Variant: thickDRA + "/" + thick, Metric: m.metric, Unit: "×", Samples: ratios})
		benchLog("%s, median of %d: %.2f %s without the DRA objects, %.2f with them (×%.2f; per round ×%.2f)",
			m.metric, len(none), medianOf(none), m.unit, medianOf(dra), medianOf(dra)/medianOf(none), medianOf(ratios))
	}
	for _, v := range []struct{ metric, name string }{{"rss_mib_idle", "idle"}, {"heap_inuse_mib_idle", "heap"}} {
		none, dra := medianOf(idle[thick][v.metric]), medianOf(idle[thickDRA][v.metric])
		b.ReportMetric(none, v.name+"-MiB")
		b.ReportMetric(dra, v.name+"-DRA-MiB")
		b.ReportMetric(dra/none, v.name+"-DRA/none")
	}
}

// populateDRA creates the ResourceSlices and ResourceClaims (see draClaims),
// a few at a time; the claims on the node are reserved for pods[k], the
// others for pods that exist on no node of this cluster.
func populateDRA(ctx context.Context, b *testing.B, kc kubernetes.Interface, pods []testbed.Pod) {
	b.Helper()
	start := time.Now()
	createAll(b, draSlices, func(i int) error {
		var s *resourcev1.ResourceSlice
		switch {
		case i < draNodePFs:
			s = draSlice(testbed.NodeName, draNICDriver, fmt.Sprintf("pf%d", i), "vf", draNodeVFs, vfAttributes(i))
		case i == draNodePFs:
			s = draSlice(testbed.NodeName, draGPUDriver, "gpu", "gpu", 8, func(d int, a attributes) {
				a["model"] = strAttr("h100")
				a[draAttrID] = strAttr(fmt.Sprintf("GPU-%08x", d))
			})
		case i == draNodePFs+1:
			s = draSlice(testbed.NodeName, "nic.polynet.bench", "nic", "nic", 8, func(d int, a attributes) {
				a["ifName"] = strAttr(fmt.Sprintf("eth%d", d))
			})
		default:
			s = draSlice(draOtherNode(i-draNodeSlices), draNICDriver, "pf0", "vf", draOtherVFs, vfAttributes(0))
		}
		cctx, cancel := context.WithTimeout(ctx, testbed.CallTimeout)
		defer cancel()
		_, err := kc.ResourceV1().ResourceSlices().Create(cctx, s, metav1.CreateOptions{})
		return err
	})
	createAll(b, draClaims, func(i int) error {
		k := i / draOnNodeEvery
		ns := fmt.Sprintf("scale-%d", k%scaleNamespaces)
		pod := testbed.Pod{Namespace: ns, Name: fmt.Sprintf("remote-%d", i), UID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i)}
		node, pool, device := draOtherNode(i%draOtherNodes), "pf0", fmt.Sprintf("vf-%d", (i/draOtherNodes)%draOtherVFs)
		if i%draOnNodeEvery == 0 {
			pod = pods[k]
			node, pool, device = testbed.NodeName, fmt.Sprintf("pf%d", k/draNodeVFs), fmt.Sprintf("vf-%d", k%draNodeVFs)
		}
		allocated := i%draOnNodeEvery < 8
		return createClaim(ctx, kc, pod, fmt.Sprintf("%s-net-%05d", pod.Name, i), allocated, node, node+"-"+pool, device)
	})
	benchLog("created %d ResourceSlices (%d on %s) and %d ResourceClaims (%d allocated on %s, %d on other nodes) in %s",
		draSlices, draNodeSlices, testbed.NodeName, draClaims, draClaims/draOnNodeEvery, testbed.NodeName,
		draClaims*7/draOnNodeEvery, time.Since(start).Round(time.Millisecond))
}

// The network attributes a slice gives its devices.
const (
	draAttrRes = "k8s.cni.cncf.io/resourceName"
	draAttrID  = "k8s.cni.cncf.io/deviceID"
)

type attributes = map[resourcev1.QualifiedName]resourcev1.DeviceAttribute

func strAttr(s string) resourcev1.DeviceAttribute { return resourcev1.DeviceAttribute{StringValue: &s} }

func draOtherNode(i int) string { return fmt.Sprintf("node-%d", i+2) }

// vfAttributes gives the VFs of PF pf both network attributes.
func vfAttributes(pf int) func(int, attributes) {
	return func(d int, a attributes) {
		a["pf"] = strAttr(fmt.Sprintf("ens%df0", pf+1))
		a[draAttrRes] = strAttr(draResource)
		a[draAttrID] = strAttr(fmt.Sprintf("0000:%02x:%02x.%d", 0x10+pf, d/8, d%8))
	}
}

// draSlice is the one slice of a pool of node "<node>-<pool>" with n devices
// "<prefix>-<i>", each with a NUMA node, a bandwidth and the attributes attrs
// adds.
func draSlice(node, driver, pool, prefix string, n int, attrs func(int, attributes)) *resourcev1.ResourceSlice {
	name := node + "-" + pool
	s := &resourcev1.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: resourcev1.ResourceSliceSpec{Driver: driver, NodeName: &node,
			Pool: resourcev1.ResourcePool{Name: name, Generation: 1, ResourceSliceCount: 1}},
	}
	for d := range n {
		numa := int64(d % 2)
		dev := resourcev1.Device{Name: fmt.Sprintf("%s-%d", prefix, d), Attributes: attributes{"numaNode": {IntValue: &numa}},
			Capacity: map[resourcev1.QualifiedName]resourcev1.DeviceCapacity{"bandwidth": {Value: resource.MustParse("25G")}}}
		attrs(d, dev.Attributes)
		s.Spec.Devices = append(s.Spec.Devices, dev)
	}
	return s
}

// createClaim creates a claim of pod as the resource-claim controller makes
// it from a template, and when allocated, writes its status as the
// scheduler and the driver do: the device of the pool on node, the pod the
// claim is reserved for, and the device's network data.
func createClaim(ctx context.Context, kc kubernetes.Interface, pod testbed.Pod, name string, allocated bool, node, pool, device string) error {
	ctx, cancel := context.WithTimeout(ctx, testbed.CallTimeout)
	defer cancel()
	yes := true
	c := &resourcev1.ResourceClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: pod.Namespace,
			Annotations: map[string]string{"resource.kubernetes.io/pod-claim-name": "net"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: types.UID(pod.UID),
				Controller: &yes, BlockOwnerDeletion: &yes}}},
		Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{{
			Name: "nic", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "sriov-nic", Selectors: []resourcev1.DeviceSelector{{
				CEL: &resourcev1.CELDeviceSelector{Expression: fmt.Sprintf("device.attributes[%q].resourceName == %q", "k8s.cni.cncf.io", draResource)},
			}}},
		}}}},
	}
	created, err := kc.ResourceV1().ResourceClaims(pod.Namespace).Create(ctx, c, metav1.CreateOptions{})
	if err != nil || !allocated {
		return err
	}
	created.Status.Allocation = &resourcev1.AllocationResult{
		Devices: resourcev1.DeviceAllocationResult{Results: []resourcev1.DeviceRequestAllocationResult{
			{Request: "nic", Driver: draNICDriver, Pool: pool, Device: device},
		}},
		NodeSelector: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{
			{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}},
		}}}},
	}
	created.Status.ReservedFor = []resourcev1.ResourceClaimConsumerReference{{Resource: "pods", Name: pod.Name, UID: types.UID(pod.UID)}}
	created.Status.Devices = []resourcev1.AllocatedDeviceStatus{{Driver: draNICDriver, Pool: pool, Device: device,
		NetworkData: &resourcev1.NetworkDeviceData{InterfaceName: "net1", IPs: []string{"10.128.0.7/16"}, HardwareAddress: "02:42:ac:11:00:07"}}}
	if _, err := kc.ResourceV1().ResourceClaims(pod.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("writing the allocation of ResourceClaim %s/%s: %w", pod.Namespace, name, err)
	}
	return nil
}
