package attach

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
)

// TestDelegateArgs proves the CNI_ARGS every delegate gets: the runtime's pairs in
// their order, IgnoreUnknown added in front when the runtime sent none, and
// K8S_POD_UID taken from the API pod when the runtime sent none or an empty one.
func TestDelegateArgs(t *testing.T) {
	pod := &podnet.Pod{Namespace: "ns1", Name: "pod-1", UID: "api-uid"}
	tests := []struct {
		name    string
		cniArgs string
		pod     *podnet.Pod
		want    request.Args
	}{
		{
			name:    "runtime args are kept in order",
			cniArgs: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-1;K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=uid-1;FOO=a=b",
			pod:     pod,
			want: request.Args{
				{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "ns1"}, {"K8S_POD_NAME", "pod-1"},
				{"K8S_POD_INFRA_CONTAINER_ID", "c1"}, {"K8S_POD_UID", "uid-1"}, {"FOO", "a=b"},
			},
		},
		{
			name:    "the runtime's IgnoreUnknown is kept as sent and where sent",
			cniArgs: "K8S_POD_NAMESPACE=ns1;IgnoreUnknown=true;K8S_POD_NAME=pod-1;K8S_POD_UID=uid-1",
			pod:     pod,
			want: request.Args{
				{"K8S_POD_NAMESPACE", "ns1"}, {"IgnoreUnknown", "true"}, {"K8S_POD_NAME", "pod-1"}, {"K8S_POD_UID", "uid-1"},
			},
		},
		{
			name:    "IgnoreUnknown is added in front when missing",
			cniArgs: "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-1;K8S_POD_UID=uid-1",
			pod:     pod,
			want: request.Args{
				{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "ns1"}, {"K8S_POD_NAME", "pod-1"}, {"K8S_POD_UID", "uid-1"},
			},
		},
		{
			name:    "K8S_POD_UID is filled from the pod when the runtime sent none",
			cniArgs: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-1",
			pod:     pod,
			want: request.Args{
				{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "ns1"}, {"K8S_POD_NAME", "pod-1"}, {"K8S_POD_UID", "api-uid"},
			},
		},
		{
			name:    "K8S_POD_UID is filled from the pod when the runtime sent an empty one",
			cniArgs: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_UID=;K8S_POD_NAME=pod-1",
			pod:     pod,
			want: request.Args{
				{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "ns1"}, {"K8S_POD_UID", "api-uid"}, {"K8S_POD_NAME", "pod-1"},
			},
		},
		{
			name:    "the runtime's K8S_POD_UID wins over the API's (a static pod's mirror)",
			cniArgs: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-1;K8S_POD_UID=sandbox-uid",
			pod:     pod,
			want: request.Args{
				{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "ns1"}, {"K8S_POD_NAME", "pod-1"}, {"K8S_POD_UID", "sandbox-uid"},
			},
		},
		{
			name:    "without a pod no K8S_POD_UID is invented",
			cniArgs: "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-1",
			want:    request.Args{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "ns1"}, {"K8S_POD_NAME", "pod-1"}},
		},
		{
			name:    "no CNI_ARGS at all gives IgnoreUnknown only",
			cniArgs: "",
			want:    request.Args{{"IgnoreUnknown", "1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := addRequest(t, tt.cniArgs)
			before := slices.Clone(req.Args)
			got := request.Args(delegateArgs(Input{Req: req, Pod: tt.pod}))
			uidCount := 0
			for _, kv := range got {
				if kv[0] == "K8S_POD_UID" {
					uidCount++
				}
			}
			if uidCount > 1 {
				t.Errorf("K8S_POD_UID appears %d times in %v", uidCount, got)
			}
			// The filled K8S_POD_UID may sit where the runtime's empty one was or
			// at the end; every other pair must keep its order.
			if diff := cmp.Diff(withoutUID(tt.want), withoutUID(got)); diff != "" {
				t.Errorf("CNI_ARGS without K8S_POD_UID (-want +got):\n%s", diff)
			}
			wantUID, wantOK := tt.want.Get("K8S_POD_UID")
			gotUID, gotOK := got.Get("K8S_POD_UID")
			if wantUID != gotUID || wantOK != gotOK {
				t.Errorf("K8S_POD_UID = %q (present %v), want %q (present %v)", gotUID, gotOK, wantUID, wantOK)
			}
			if diff := cmp.Diff(before, req.Args); diff != "" {
				t.Errorf("the request's own args changed (-before +after):\n%s", diff)
			}
		})
	}
}

func withoutUID(a request.Args) request.Args {
	return slices.DeleteFunc(slices.Clone(a), func(kv [2]string) bool { return kv[0] == "K8S_POD_UID" })
}

// TestResolveSetsCNIArgsOnEveryAttachment proves that Resolve gives the delegate
// CNI_ARGS to every attachment, the cluster network and the selected ones alike.
func TestResolveSetsCNIArgsOnEveryAttachment(t *testing.T) {
	dir := t.TempDir()
	in := Input{
		Conf:       testConf(t, dir, `,"delegates":[{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"},{"cniVersion":"1.0.0","name":"extra","type":"macvlan"}]`),
		Req:        addRequest(t, "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-1"),
		Pod:        testPod(),
		NADs:       nads([3]string{"ns1", "net-a", `{"cniVersion":"1.0.0","type":"macvlan"}`}),
		Selections: parseSel(t, "net-a"),
	}
	planned, err := Resolve(t.Context(), in)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	want := [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "ns1"}, {"K8S_POD_NAME", "pod-1"}, {"K8S_POD_UID", "uid-1"}}
	if len(planned) != 3 {
		t.Fatalf("%d attachments, want 3", len(planned))
	}
	for _, p := range planned {
		if diff := cmp.Diff(want, p.CNIArgs); diff != "" {
			t.Errorf("%s CNI_ARGS (-want +got):\n%s", p.Network, diff)
		}
	}
}
