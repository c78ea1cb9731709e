package apicache

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"

	"github.com/polynet-cni/polynet/internal/podnet"
)

func ptr[T any](v T) *T { return &v }

// TestTrimPodClaimsAndDeletion: the cached pod keeps the names of its claims
// and its deletion, and toPod turns them into the engine's pod.
func TestTrimPodClaimsAndDeletion(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	tests := []struct {
		name string
		edit func(*corev1.Pod)
		want *podnet.Pod
	}{
		{
			name: "no claims",
			edit: func(*corev1.Pod) {},
			want: &podnet.Pod{Namespace: "team-a", Name: "web", UID: "uid-1", Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": "net1"}},
		},
		{
			name: "direct, templated and extended claims; deleting",
			edit: func(p *corev1.Pod) {
				p.DeletionTimestamp = &now
				p.Spec.ResourceClaims = []corev1.PodResourceClaim{
					{Name: "nic", ResourceClaimName: ptr("shared-nic")},
					{Name: "gpu", ResourceClaimTemplateName: ptr("gpu-tmpl")},
				}
				p.Status.ResourceClaimStatuses = []corev1.PodResourceClaimStatus{
					{Name: "gpu", ResourceClaimName: ptr("web-gpu-x7k2p")},
					{Name: "nic", ResourceClaimName: ptr("shared-nic")},
					{Name: "none"},
				}
				p.Status.ExtendedResourceClaimStatus = &corev1.PodExtendedResourceClaimStatus{
					RequestMappings:   []corev1.ContainerExtendedResourceRequest{{ContainerName: "c", ResourceName: "example.com/vf", RequestName: "r0"}},
					ResourceClaimName: "web-extended-resources-q2w9z",
				}
			},
			want: &podnet.Pod{Namespace: "team-a", Name: "web", UID: "uid-1", Deleting: true,
				Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": "net1"},
				Claims:      []string{"shared-nic", "web-gpu-x7k2p", "web-extended-resources-q2w9z"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fullPod("team-a", "web", "1", "node1")
			tt.edit(&p)
			trimmed, err := trimPod(&p)
			if err != nil {
				t.Fatal(err)
			}
			tp := trimmed.(*corev1.Pod)
			if len(tp.Spec.Containers) != 0 || tp.Labels != nil || tp.Status.ExtendedResourceClaimStatus != nil && tp.Status.ExtendedResourceClaimStatus.RequestMappings != nil {
				t.Errorf("trimmed pod keeps more than the engine reads: %+v", tp)
			}
			if diff := cmp.Diff(tt.want, toPod(tp)); diff != "" {
				t.Errorf("pod (-want +got):\n%s", diff)
			}
		})
	}
}

// allocatedClaim is a claim with two devices reserved for a pod and for
// something else, allocated with the node selector given.
func allocatedClaim(sel *corev1.NodeSelector) *resourcev1.ResourceClaim {
	return &resourcev1.ResourceClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "c1", Namespace: "team-a", UID: "c-uid", ResourceVersion: "5", Labels: map[string]string{"a": "b"}},
		Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{
			{Name: "nic", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "vf"}},
		}}},
		Status: resourcev1.ResourceClaimStatus{
			Allocation: &resourcev1.AllocationResult{NodeSelector: sel, Devices: resourcev1.DeviceAllocationResult{Results: []resourcev1.DeviceRequestAllocationResult{
				{Request: "nic", Driver: "sriov.example.com", Pool: "node1", Device: "vf-3", Tolerations: []resourcev1.DeviceToleration{{Key: "k"}}},
				{Request: "gpu", Driver: "gpu.example.com", Pool: "node1", Device: "gpu-0", AdminAccess: ptr(true)},
			}}},
			ReservedFor: []resourcev1.ResourceClaimConsumerReference{
				{Resource: "pods", Name: "web", UID: "uid-1"},
				{APIGroup: "example.com", Resource: "things", Name: "t", UID: "uid-9"},
			},
		},
	}
}

func fieldSelector(op corev1.NodeSelectorOperator, nodes ...string) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: op, Values: nodes}}}
}

// TestTrimClaim: a claim keeps its allocation's devices and the pods it is
// reserved for, unless its allocation is surely for another node.
func TestTrimClaim(t *testing.T) {
	whole := &podnet.Claim{Namespace: "team-a", Name: "c1", Allocated: true, ReservedFor: []string{"uid-1"}, Devices: []podnet.ClaimDevice{
		{Request: "nic", Driver: "sriov.example.com", Pool: "node1", Device: "vf-3"},
		{Request: "gpu", Driver: "gpu.example.com", Pool: "node1", Device: "gpu-0", AdminAccess: true},
	}}
	elsewhere := &podnet.Claim{Namespace: "team-a", Name: "c1", Allocated: true}
	labels := corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "rack", Operator: corev1.NodeSelectorOpIn, Values: []string{"r1"}}}}
	tests := []struct {
		name string
		node string
		sel  *corev1.NodeSelector
		want *podnet.Claim
	}{
		{name: "no node selector (devices of every node)", node: "node1", want: whole},
		{name: "this node", node: "node1", sel: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{fieldSelector(corev1.NodeSelectorOpIn, "node1")}}, want: whole},
		{name: "another node", node: "node1", sel: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{fieldSelector(corev1.NodeSelectorOpIn, "node2")}}, want: elsewhere},
		{name: "not this node", node: "node1", sel: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{fieldSelector(corev1.NodeSelectorOpNotIn, "node1")}}, want: elsewhere},
		{name: "another node or this one", node: "node1", sel: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
			fieldSelector(corev1.NodeSelectorOpIn, "node2"), fieldSelector(corev1.NodeSelectorOpIn, "node1")}}, want: whole},
		{name: "labels, unknown here", node: "node1", sel: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{labels}}, want: whole},
		{name: "no node name: every claim whole", node: "", sel: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{fieldSelector(corev1.NodeSelectorOpIn, "node2")}}, want: whole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trimmed, err := trimClaim(tt.node)(allocatedClaim(tt.sel))
			if err != nil {
				t.Fatal(err)
			}
			tc := trimmed.(*resourcev1.ResourceClaim)
			if tc.Labels != nil || len(tc.Spec.Devices.Requests) != 0 || tc.Status.Allocation.NodeSelector != nil ||
				len(tc.Status.Allocation.Devices.Results) > 0 && tc.Status.Allocation.Devices.Results[0].Tolerations != nil {
				t.Errorf("trimmed claim keeps more than the engine reads: %+v", tc)
			}
			if diff := cmp.Diff(tt.want, toClaim(tc)); diff != "" {
				t.Errorf("claim (-want +got):\n%s", diff)
			}
		})
	}
	unallocated, _ := trimClaim("node1")(&resourcev1.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Name: "c2", Namespace: "team-a"}})
	if diff := cmp.Diff(&podnet.Claim{Namespace: "team-a", Name: "c2"}, toClaim(unallocated.(*resourcev1.ResourceClaim))); diff != "" {
		t.Errorf("unallocated claim (-want +got):\n%s", diff)
	}
}

// TestTrimSlice: a slice keeps its pool, generation and devices, and of their
// attributes only the network ones, a name without a domain read in the
// driver's.
func TestTrimSlice(t *testing.T) {
	s := &resourcev1.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "node1-cni", UID: ktypes.UID("s-uid"), ResourceVersion: "3", Labels: map[string]string{"a": "b"}},
		Spec: resourcev1.ResourceSliceSpec{Driver: "k8s.cni.cncf.io", NodeName: ptr("node1"),
			Pool: resourcev1.ResourcePool{Name: "node1", Generation: 4, ResourceSliceCount: 1},
			Devices: []resourcev1.Device{
				{Name: "vf-1", Attributes: map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{
					"resourceName":                 {StringValue: ptr("example.com/vf")},
					podnet.DeviceIDAttribute:       {StringValue: ptr("0000:3b:02.1")},
					"numa":                         {IntValue: ptr(int64(1))},
					"example.com/pf":               {StringValue: ptr("ens1f0")},
					podnet.DeviceResourceAttribute: {IntValue: ptr(int64(2))},
				}},
				{Name: "gpu-0", Attributes: map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{"model": {StringValue: ptr("h100")}}},
			}},
	}
	trimmed, err := trimSlice(s)
	if err != nil {
		t.Fatal(err)
	}
	ts := trimmed.(*resourcev1.ResourceSlice)
	if ts.Labels != nil || ts.Spec.Pool.ResourceSliceCount != 0 {
		t.Errorf("trimmed slice keeps more than the engine reads: %+v", ts)
	}
	want := podnet.ResourceSlice{Driver: "k8s.cni.cncf.io", Pool: "node1", Generation: 4, Devices: []podnet.SliceDevice{
		{Name: "vf-1", Attributes: map[string]string{podnet.DeviceResourceAttribute: "example.com/vf", podnet.DeviceIDAttribute: "0000:3b:02.1"}},
		{Name: "gpu-0"},
	}}
	if diff := cmp.Diff(want, toSlice(ts)); diff != "" {
		t.Errorf("slice (-want +got):\n%s", diff)
	}
	if keys, _ := slicePool(ts); len(keys) != 1 || keys[0] != "k8s.cni.cncf.io/node1" {
		t.Errorf("pool index keys %v", keys)
	}
}

// TestClaimsNotServed: on an API server without resource.k8s.io/v1, Start
// reports it after one discovery request and starts no informer.
func TestClaimsNotServed(t *testing.T) {
	f := newFakeAPI(t)
	c, err := NewClaims(f.config(), "node1")
	if err != nil {
		t.Fatal(err)
	}
	served, err := c.Start(t.Context(), time.Minute)
	if served || err != nil {
		t.Fatalf("Start = %v, %v; want not served and no error", served, err)
	}
	var paths []string
	for _, r := range f.requests() {
		paths = append(paths, r.Method+" "+r.Path)
	}
	if diff := cmp.Diff([]string{"GET /apis/resource.k8s.io/v1"}, paths); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// TestClaimsDiscoveryFails: a discovery that keeps failing is tried again, and
// fails Start once the sync timeout is spent: the daemon does not start
// without knowing whether DRA is there.
func TestClaimsDiscoveryFails(t *testing.T) {
	f := newFakeAPI(t)
	f.fail = func(r request) (int, bool) {
		return http.StatusServiceUnavailable, strings.HasPrefix(r.Path, "/apis/resource.k8s.io")
	}
	c, err := NewClaims(f.config(), "node1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served, err := c.Start(ctx, time.Second)
	if served || err == nil || !strings.Contains(err.Error(), "discovery of resource.k8s.io/v1") {
		t.Fatalf("Start = %v, %v; want a discovery error", served, err)
	}
	if n := len(f.requests()); n < 2 {
		t.Errorf("%d discovery requests, want it tried again", n)
	}
}
