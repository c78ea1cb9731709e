package apiclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// A pod with a claim of its spec, one made from a template, one for its
// extended resources, and a deletion timestamp.
const draPodJSON = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"team-a","uid":"uid-1",
 "deletionTimestamp":"2026-01-02T03:04:05Z","annotations":{"k8s.v1.cni.cncf.io/networks":"net1"}},
 "spec":{"nodeName":"node1","containers":[{"name":"c","image":"i"}],
  "resourceClaims":[{"name":"nic","resourceClaimName":"shared-nic"},{"name":"gpu","resourceClaimTemplateName":"gpu-tmpl"}]},
 "status":{"phase":"Pending","resourceClaimStatuses":[{"name":"gpu","resourceClaimName":"web-gpu-x7k2p"},{"name":"nic","resourceClaimName":"shared-nic"}],
  "extendedResourceClaimStatus":{"requestMappings":[{"containerName":"c","resourceName":"example.com/vf","requestName":"container-0-request-0"}],
   "resourceClaimName":"web-extended-resources-q2w9z"}}}`

const claimJSON = `{"apiVersion":"resource.k8s.io/v1","kind":"ResourceClaim","metadata":{"name":"web-gpu-x7k2p","namespace":"team-a","uid":"c-1"},
 "spec":{"devices":{"requests":[{"name":"nic","exactly":{"deviceClassName":"vf"}}]}},
 "status":{"allocation":{"devices":{"results":[
   {"request":"nic","driver":"sriov.example.com","pool":"node1","device":"vf-3"},
   {"request":"gpu","driver":"gpu.example.com","pool":"node1","device":"gpu-0","adminAccess":true}]},
  "nodeSelector":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"In","values":["node1"]}]}]}},
  "reservedFor":[{"resource":"pods","name":"web","uid":"uid-1"},{"apiGroup":"example.com","resource":"things","name":"t","uid":"uid-9"}]}}`

const slicesJSON = `{"apiVersion":"resource.k8s.io/v1","kind":"ResourceSliceList","metadata":{},"items":[
 {"metadata":{"name":"node1-sriov-x"},"spec":{"driver":"sriov.example.com","nodeName":"node1","pool":{"name":"node1","generation":3,"resourceSliceCount":1},
  "devices":[{"name":"vf-3","attributes":{"k8s.cni.cncf.io/resourceName":{"string":"example.com/vf"},"k8s.cni.cncf.io/deviceID":{"string":"0000:3b:02.3"},
     "numa":{"int":1},"pf":{"string":"ens1f0"}}},
   {"name":"vf-4"}]}}]}`

// TestDRADecodes: the pod's claim names, each once, and its deletion; a
// claim's allocation and the pods it is reserved for; the slices of pools of
// a name with their devices' string attributes, names qualified by the
// driver, read with a field selector naming the pool.
func TestDRADecodes(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantPath  string
		wantQuery string
		get       func(*Client) (any, error)
		want      any
	}{
		{
			name: "pod", body: draPodJSON, wantPath: "/api/v1/namespaces/team-a/pods/web",
			get: func(c *Client) (any, error) { return c.Pod(context.Background(), "team-a", "web") },
			want: &podnet.Pod{Namespace: "team-a", Name: "web", UID: "uid-1", Deleting: true,
				Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": "net1"},
				Claims:      []string{"shared-nic", "web-gpu-x7k2p", "web-extended-resources-q2w9z"}},
		},
		{
			name: "pod without claims", body: podJSON, wantPath: "/api/v1/namespaces/team-a/pods/web",
			get: func(c *Client) (any, error) { return c.Pod(context.Background(), "team-a", "web") },
			want: &podnet.Pod{Namespace: "team-a", Name: "web", UID: "uid-1",
				Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": "net1"}},
		},
		{
			name: "claim", body: claimJSON, wantPath: "/apis/resource.k8s.io/v1/namespaces/team-a/resourceclaims/web-gpu-x7k2p",
			get: func(c *Client) (any, error) { return c.Claim(context.Background(), "team-a", "web-gpu-x7k2p") },
			want: &podnet.Claim{Namespace: "team-a", Name: "web-gpu-x7k2p", Allocated: true, ReservedFor: []string{"uid-1"},
				Devices: []podnet.ClaimDevice{
					{Request: "nic", Driver: "sriov.example.com", Pool: "node1", Device: "vf-3"},
					{Request: "gpu", Driver: "gpu.example.com", Pool: "node1", Device: "gpu-0", AdminAccess: true},
				}},
		},
		{
			name: "claim not allocated", body: `{"metadata":{"name":"c","namespace":"team-a"},"status":{}}`,
			wantPath: "/apis/resource.k8s.io/v1/namespaces/team-a/resourceclaims/c",
			get:      func(c *Client) (any, error) { return c.Claim(context.Background(), "team-a", "c") },
			want:     &podnet.Claim{Namespace: "team-a", Name: "c"},
		},
		{
			name: "slices", body: slicesJSON, wantPath: "/apis/resource.k8s.io/v1/resourceslices",
			wantQuery: "fieldSelector=" + url.QueryEscape("spec.pool.name=node1"),
			get:       func(c *Client) (any, error) { return c.PoolSlices(context.Background(), "node1") },
			want: []podnet.ResourceSlice{{Driver: "sriov.example.com", Pool: "node1", Generation: 3, Devices: []podnet.SliceDevice{
				{Name: "vf-3", Attributes: map[string]string{
					podnet.DeviceResourceAttribute: "example.com/vf", podnet.DeviceIDAttribute: "0000:3b:02.3", "sriov.example.com/pf": "ens1f0",
				}},
				{Name: "vf-4"},
			}}},
		},
		{
			name: "a pool name to escape", body: `{"items":[]}`, wantPath: "/apis/resource.k8s.io/v1/resourceslices",
			wantQuery: "fieldSelector=" + url.QueryEscape(`spec.pool.name=a\,b\=c`),
			get:       func(c *Client) (any, error) { return c.PoolSlices(context.Background(), "a,b=c") },
			want:      []podnet.ResourceSlice{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) { answer(w, http.StatusOK, tt.body) })
			got, err := tt.get(plainClient(t, s, time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
			reqs := s.requests()
			if len(reqs) != 1 || reqs[0].Method != http.MethodGet || reqs[0].Path != tt.wantPath || reqs[0].Query != tt.wantQuery {
				t.Errorf("requests %+v, want one GET %s?%s", reqs, tt.wantPath, tt.wantQuery)
			}
		})
	}
}

// TestClaimNotFound: a claim that is not there is a *podnet.NotFoundError.
func TestClaimNotFound(t *testing.T) {
	s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) { answer(w, http.StatusNotFound, notFoundJSON) })
	_, err := plainClient(t, s, time.Second).Claim(context.Background(), "team-a", "gone")
	var nf *podnet.NotFoundError
	if !errors.As(err, &nf) || nf.Kind != "ResourceClaim" || nf.Name != "gone" {
		t.Errorf("error %v, want a NotFoundError of ResourceClaim team-a/gone", err)
	}
}
