package apicache

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// fullPod is a pod with much the engine does not read.
func fullPod(ns, name, uid, node string) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, UID: ktypes.UID("uid-" + uid), ResourceVersion: "7",
			Labels:          map[string]string{"app": name},
			Annotations:     map[string]string{"k8s.v1.cni.cncf.io/networks": "net1"},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "rs-uid"}},
		},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "registry/app:1",
			Env: []corev1.EnvVar{{Name: "A", Value: strings.Repeat("x", 100)}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending, PodIP: "10.0.0.9"},
	}
}

func fullNAD(ns, name, config string) nadv1.NetworkAttachmentDefinition {
	return nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, ResourceVersion: "8",
			Annotations:   map[string]string{podnet.ResourceNameAnnotation: "vendor.com/nic"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}},
		},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config},
	}
}

// startCache builds the cache against the fake, starts it and waits for the sync.
func startCache(t *testing.T, f *fakeAPI, node string) *Cache {
	t.Helper()
	return startCacheWith(t, f, node, func(*Cache) {})
}

// startCacheWith is startCache that calls before on the cache before it
// starts, where handlers are added.
func startCacheWith(t *testing.T, f *fakeAPI, node string, before func(*Cache)) *Cache {
	t.Helper()
	c, err := New(f.config(), node, "multus")
	if err != nil {
		t.Fatal(err)
	}
	before(c)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(c.Stop)
	t.Cleanup(cancel)
	if err := c.Start(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNodeScoping: every list and watch of pods carries the field selector
// spec.nodeName=<node>, and NADs are listed from every namespace without one;
// without a node name, pods of every node are listed.
func TestNodeScoping(t *testing.T) {
	tests := []struct {
		node         string
		wantSelector string
	}{
		{"node1", "spec.nodeName=node1"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run("node="+tt.node, func(t *testing.T) {
			f := newFakeAPI(t)
			f.pods = []corev1.Pod{fullPod("team-a", "web", "1", "node1"), fullPod("team-a", "elsewhere", "2", "node2")}
			startCache(t, f, tt.node)
			var podReqs, nadReqs int
			for _, r := range f.requests() {
				switch r.Path {
				case "/api/v1/pods":
					podReqs++
					if got := r.Query.Get("fieldSelector"); got != tt.wantSelector {
						t.Errorf("%s pods (watch=%v): fieldSelector %q, want %q", r.Method, r.watching(), got, tt.wantSelector)
					}
				case "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions":
					nadReqs++
					if got := r.Query.Get("fieldSelector"); got != "" {
						t.Errorf("NADs: fieldSelector %q, want none", got)
					}
				}
			}
			if podReqs == 0 || nadReqs == 0 {
				t.Errorf("%d pod and %d NAD list/watch requests, want some of each", podReqs, nadReqs)
			}
		})
	}
}

// TestServedFromCache: after the sync, pods of the node and NADs are answered
// from the cache, without a single read of the API server.
func TestServedFromCache(t *testing.T) {
	f := newFakeAPI(t)
	f.pods = []corev1.Pod{fullPod("team-a", "web", "1", "node1")}
	f.nads = []nadv1.NetworkAttachmentDefinition{fullNAD("team-a", "net1", `{"cniVersion":"1.0.0","type":"macvlan"}`)}
	c := startCache(t, f, "node1")
	before := len(f.objectReads())

	pod, err := c.Pod(context.Background(), podnet.PodRef{Namespace: "team-a", Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	wantPod := &podnet.Pod{Namespace: "team-a", Name: "web", UID: "uid-1", Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": "net1"}}
	if diff := cmp.Diff(wantPod, pod); diff != "" {
		t.Errorf("pod (-want +got):\n%s", diff)
	}
	nad, err := c.NAD(context.Background(), "team-a", "net1")
	if err != nil {
		t.Fatal(err)
	}
	wantNAD := &podnet.NAD{Namespace: "team-a", Name: "net1", Config: `{"cniVersion":"1.0.0","type":"macvlan"}`,
		Annotations: map[string]string{podnet.ResourceNameAnnotation: "vendor.com/nic"}}
	if diff := cmp.Diff(wantNAD, nad); diff != "" {
		t.Errorf("NAD (-want +got):\n%s", diff)
	}
	if reads := f.objectReads()[before:]; len(reads) != 0 {
		t.Errorf("reads of the API server after the sync: %+v, want none", reads)
	}
}

// TestLiveReadFallback: an object the cache lacks (created after the list, or a
// pod of another node) costs exactly one GET, whose answer is returned.
func TestLiveReadFallback(t *testing.T) {
	f := newFakeAPI(t)
	f.pods = []corev1.Pod{fullPod("team-a", "elsewhere", "2", "node2")}
	f.latePods = []corev1.Pod{fullPod("team-a", "late", "3", "node1")}
	f.lateNADs = []nadv1.NetworkAttachmentDefinition{fullNAD("team-b", "late-net", `{"type":"bridge"}`)}
	c := startCache(t, f, "node1")

	tests := []struct {
		name     string
		get      func() (any, error)
		want     any
		wantPath string
	}{
		{
			name: "pod created after the list",
			get: func() (any, error) {
				return c.Pod(context.Background(), podnet.PodRef{Namespace: "team-a", Name: "late"})
			},
			want: &podnet.Pod{Namespace: "team-a", Name: "late", UID: "uid-3",
				Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": "net1"}},
			wantPath: "/api/v1/namespaces/team-a/pods/late",
		},
		{
			name: "pod of another node",
			get: func() (any, error) {
				return c.Pod(context.Background(), podnet.PodRef{Namespace: "team-a", Name: "elsewhere"})
			},
			want: &podnet.Pod{Namespace: "team-a", Name: "elsewhere", UID: "uid-2",
				Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": "net1"}},
			wantPath: "/api/v1/namespaces/team-a/pods/elsewhere",
		},
		{
			name: "NAD created after the list",
			get:  func() (any, error) { return c.NAD(context.Background(), "team-b", "late-net") },
			want: &podnet.NAD{Namespace: "team-b", Name: "late-net", Config: `{"type":"bridge"}`,
				Annotations: map[string]string{podnet.ResourceNameAnnotation: "vendor.com/nic"}},
			wantPath: "/apis/k8s.cni.cncf.io/v1/namespaces/team-b/network-attachment-definitions/late-net",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.objectReads())
			got, err := tt.get()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("object (-want +got):\n%s", diff)
			}
			reads := f.objectReads()[before:]
			if len(reads) != 1 || reads[0].Path != tt.wantPath {
				t.Errorf("reads %+v, want one GET %s", reads, tt.wantPath)
			}
		})
	}
}

// TestStaleCachedPod: a cached pod whose UID is not the one asked for may be a
// pod the watch has not yet seen deleted and recreated under its name: it costs
// one live read, whose answer is returned (the engine judges a UID that still
// differs). A matching UID, no UID asked for, or a static pod's mirror (whose
// UID never matches the sandbox's) are served from the cache.
func TestStaleCachedPod(t *testing.T) {
	mirror := fullPod("kube-system", "etcd-node1", "mirror", "node1")
	mirror.Annotations = map[string]string{podnet.ConfigSourceAnnotation: "file"}
	f := newFakeAPI(t)
	f.pods = []corev1.Pod{fullPod("team-a", "web-0", "1", "node1"), fullPod("team-a", "gone-0", "g", "node1"), mirror}
	c := startCache(t, f, "node1")
	// The API server moves on; the fake's watch tells the cache nothing of it.
	f.mu.Lock()
	f.pods = []corev1.Pod{mirror}
	f.latePods = []corev1.Pod{fullPod("team-a", "web-0", "2", "node1")}
	f.mu.Unlock()

	tests := []struct {
		name      string
		ref       podnet.PodRef
		wantUID   string
		wantErr   bool
		wantReads int
	}{
		{"same UID", podnet.PodRef{Namespace: "team-a", Name: "web-0", UID: "uid-1"}, "uid-1", false, 0},
		{"no UID asked for", podnet.PodRef{Namespace: "team-a", Name: "web-0"}, "uid-1", false, 0},
		{"recreated", podnet.PodRef{Namespace: "team-a", Name: "web-0", UID: "uid-2"}, "uid-2", false, 1},
		{"another UID in the API too", podnet.PodRef{Namespace: "team-a", Name: "web-0", UID: "uid-9"}, "uid-2", false, 1},
		{"deleted", podnet.PodRef{Namespace: "team-a", Name: "gone-0", UID: "uid-new"}, "", true, 1},
		{"static pod's mirror", podnet.PodRef{Namespace: "kube-system", Name: "etcd-node1", UID: "file-hash"}, "uid-mirror", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.objectReads())
			pod, err := c.Pod(context.Background(), tt.ref)
			var nf *podnet.NotFoundError
			switch {
			case tt.wantErr && !errors.As(err, &nf):
				t.Errorf("Pod: %v, want a NotFoundError", err)
			case !tt.wantErr && err != nil:
				t.Fatalf("Pod: %v", err)
			case !tt.wantErr && pod.UID != tt.wantUID:
				t.Errorf("UID %s, want %s", pod.UID, tt.wantUID)
			}
			if reads := f.objectReads()[before:]; len(reads) != tt.wantReads {
				t.Errorf("live reads %+v, want %d", reads, tt.wantReads)
			}
		})
	}
}

// TestNotFound: an object neither in the cache nor in the API server is a
// *podnet.NotFoundError naming it.
func TestNotFound(t *testing.T) {
	f := newFakeAPI(t)
	c := startCache(t, f, "node1")
	_, err := c.Pod(context.Background(), podnet.PodRef{Namespace: "ns", Name: "gone"})
	var nf *podnet.NotFoundError
	if !errors.As(err, &nf) || *nf != (podnet.NotFoundError{Kind: "pod", Namespace: "ns", Name: "gone"}) {
		t.Errorf("Pod: %v, want NotFoundError for pod ns/gone", err)
	}
	_, err = c.NAD(context.Background(), "ns", "gone-net")
	if !errors.As(err, &nf) || *nf != (podnet.NotFoundError{Kind: "NetworkAttachmentDefinition", Namespace: "ns", Name: "gone-net"}) {
		t.Errorf("NAD: %v, want NotFoundError for NetworkAttachmentDefinition ns/gone-net", err)
	}
}

// TestTrimmed: the cache keeps of a pod only what the engine reads (identity,
// annotations, node), and drops a NAD's managed fields.
func TestTrimmed(t *testing.T) {
	f := newFakeAPI(t)
	f.pods = []corev1.Pod{fullPod("team-a", "web", "1", "node1")}
	f.nads = []nadv1.NetworkAttachmentDefinition{fullNAD("team-a", "net1", `{"type":"macvlan"}`)}
	c := startCache(t, f, "node1")

	pod, err := c.pods.Pods("team-a").Get("web")
	if err != nil {
		t.Fatal(err)
	}
	wantPod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", UID: "uid-1", ResourceVersion: "7",
			Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": "net1"}},
		Spec: corev1.PodSpec{NodeName: "node1"},
	}
	if diff := cmp.Diff(wantPod, pod); diff != "" {
		t.Errorf("cached pod (-want +got):\n%s", diff)
	}
	nad, err := c.nads.NetworkAttachmentDefinitions("team-a").Get("net1")
	if err != nil {
		t.Fatal(err)
	}
	if nad.ManagedFields != nil || nad.Spec.Config != `{"type":"macvlan"}` || nad.Annotations[podnet.ResourceNameAnnotation] != "vendor.com/nic" {
		t.Errorf("cached NAD %+v: want no managed fields, its config and annotations kept", nad)
	}
}

// TestTrimFunctions: the transforms pass through what is not theirs (the
// informer's tombstones) untouched.
func TestTrimFunctions(t *testing.T) {
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: &corev1.Pod{}}
	for name, trim := range map[string]func(any) (any, error){"trimPod": trimPod, "trimNAD": trimNAD} {
		got, err := trim(tomb)
		if err != nil || !cmp.Equal(got, tomb) {
			t.Errorf("%s(tombstone) = %v, %v; want it unchanged", name, got, err)
		}
	}
}

// TestPatchNetworkStatus: a merge PATCH of pods/status with the annotation and
// the UID precondition, nothing else.
func TestPatchNetworkStatus(t *testing.T) {
	f := newFakeAPI(t)
	f.pods = []corev1.Pod{fullPod("team-a", "web", "1", "node1")}
	c := startCache(t, f, "node1")
	value := `[{"name":"team-a/net1","interface":"net1"}]`
	if err := c.PatchNetworkStatus(context.Background(), podnet.PodRef{Namespace: "team-a", Name: "web", UID: "uid-1"}, value); err != nil {
		t.Fatal(err)
	}
	var patches []request
	for _, r := range f.requests() {
		if r.Method == http.MethodPatch {
			patches = append(patches, r)
		}
	}
	if len(patches) != 1 {
		t.Fatalf("%d PATCH requests, want 1", len(patches))
	}
	p := patches[0]
	if p.Path != "/api/v1/namespaces/team-a/pods/web/status" || p.ContentType != "application/merge-patch+json" {
		t.Errorf("PATCH %s (%s), want /api/v1/namespaces/team-a/pods/web/status as application/merge-patch+json", p.Path, p.ContentType)
	}
	var body any
	if err := json.Unmarshal(p.Body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"metadata": map[string]any{"uid": "uid-1", "annotations": map[string]any{netstatus.Annotation: value}}}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("patch body (-want +got):\n%s", diff)
	}
}

// TestPatchNetworkStatusError: a refused patch (the pod is gone) is an podnet.APIError
// naming the operation.
func TestPatchNetworkStatusError(t *testing.T) {
	f := newFakeAPI(t)
	c := startCache(t, f, "node1")
	err := c.PatchNetworkStatus(context.Background(), podnet.PodRef{Namespace: "ns", Name: "gone", UID: "u"}, "[]")
	var apiErr *podnet.APIError
	if !errors.As(err, &apiErr) || apiErr.Transient || !strings.Contains(err.Error(), "patching pod status") {
		t.Errorf("error %v, want a non-transient podnet.APIError about patching pod status", err)
	}
}

// TestEvent: an event reaches the API server in the background, about the pod
// with its UID, from our component.
func TestEvent(t *testing.T) {
	f := newFakeAPI(t)
	c := startCache(t, f, "node1")
	ref := podnet.PodRef{Namespace: "team-a", Name: "web", UID: "uid-1"}
	if err := c.Event(context.Background(), ref, corev1.EventTypeWarning, "NetworkAttachmentFailed", "bridge failed"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-f.events:
		got := []string{ev.Namespace, ev.InvolvedObject.Kind, ev.InvolvedObject.Namespace, ev.InvolvedObject.Name,
			string(ev.InvolvedObject.UID), ev.Type, ev.Reason, ev.Message, ev.Source.Component}
		want := []string{"team-a", "Pod", "team-a", "web", "uid-1", "Warning", "NetworkAttachmentFailed", "bridge failed", "multus"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("event [namespace kind ns name uid type reason message component] (-want +got):\n%s", diff)
		}
	case <-time.After(time.Minute):
		t.Fatal("no event reached the API server")
	}
}

// TestReady: Ready asks /readyz and reports a refusal.
func TestReady(t *testing.T) {
	f := newFakeAPI(t)
	c := startCache(t, f, "node1")
	if err := c.Ready(context.Background()); err != nil {
		t.Errorf("Ready: %v", err)
	}
	f.mu.Lock()
	f.fail = func(r request) (int, bool) { return http.StatusServiceUnavailable, r.Path == "/readyz" }
	f.mu.Unlock()
	err := c.Ready(context.Background())
	var apiErr *podnet.APIError
	if !errors.As(err, &apiErr) || !apiErr.Transient {
		t.Errorf("Ready against a 503: %v, want a transient podnet.APIError", err)
	}
}

// TestStartFailsWithoutSync: caches that cannot fill make Start fail within its
// bound, with an error that says so.
func TestStartFailsWithoutSync(t *testing.T) {
	f := newFakeAPI(t)
	f.fail = func(r request) (int, bool) { return http.StatusInternalServerError, true }
	c, err := New(f.config(), "node1", "multus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	err = c.Start(ctx, 500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not sync") {
		t.Errorf("Start: %v, want an error saying the caches did not sync", err)
	}
}

// TestWatchesOutliveRequestTimeout: the client configuration's Timeout bounds
// requests (the daemon sets 30s), but must not cut the informers' watches, which
// the API server keeps open for minutes: cut, every node's daemon would
// re-establish both watches each Timeout.
func TestWatchesOutliveRequestTimeout(t *testing.T) {
	f := newFakeAPI(t)
	cfg := f.config()
	cfg.Timeout = 400 * time.Millisecond
	c, err := New(cfg, "node1", "multus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := c.Start(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Proving that something does not happen takes a window; five times the
	// timeout is ample for a cut to show.
	select {
	case path := <-f.hangups:
		t.Errorf("the client hung up its watch of %s: the %s request timeout applies to watches", path, cfg.Timeout)
	case <-time.After(5 * cfg.Timeout):
	}
}
