package podnet

import (
	"errors"
	"fmt"
	"testing"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

func TestPodRefAndStatic(t *testing.T) {
	tests := []struct {
		name       string
		pod        Pod
		wantRef    string
		wantStatic bool
	}{
		{name: "an API pod", pod: Pod{Namespace: "ns1", Name: "p", UID: "u1"}, wantRef: "ns1/p"},
		{name: "config.source api", pod: Pod{Namespace: "ns1", Name: "p", Annotations: map[string]string{ConfigSourceAnnotation: "api"}}, wantRef: "ns1/p"},
		{name: "a static pod from a file", pod: Pod{Namespace: "kube-system", Name: "etcd-n1", Annotations: map[string]string{ConfigSourceAnnotation: "file"}}, wantRef: "kube-system/etcd-n1", wantStatic: true},
		{name: "a static pod from a URL", pod: Pod{Namespace: "kube-system", Name: "x", Annotations: map[string]string{ConfigSourceAnnotation: "http"}}, wantRef: "kube-system/x", wantStatic: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := tt.pod.Ref()
			if ref.String() != tt.wantRef || ref.UID != tt.pod.UID {
				t.Errorf("Ref() = %+v (%s), want %s with UID %q", ref, ref, tt.wantRef, tt.pod.UID)
			}
			if got := tt.pod.Static(); got != tt.wantStatic {
				t.Errorf("Static() = %v, want %v", got, tt.wantStatic)
			}
		})
	}
}

func TestNADRefAndNotFound(t *testing.T) {
	nad := NAD{Namespace: "ns1", Name: "blue"}
	if got := nad.Ref(); got != "ns1/blue" {
		t.Errorf("Ref() = %q, want ns1/blue", got)
	}
	err := fmt.Errorf("resolving: %w", &NotFoundError{Kind: "NetworkAttachmentDefinition", Namespace: "ns1", Name: "blue"})
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Name != "blue" {
		t.Fatalf("errors.As(%v) = %v, want the NotFoundError", err, nf)
	}
	if want := "NetworkAttachmentDefinition ns1/blue not found"; nf.Error() != want {
		t.Errorf("Error() = %q, want %q", nf.Error(), want)
	}
}

func TestAPIError(t *testing.T) {
	cause := errors.New("connection refused")
	tests := []struct {
		err      *APIError
		wantText string
		wantCode uint
	}{
		{&APIError{Op: "GET /api/v1/namespaces/ns1/pods/p", Err: cause, Transient: true},
			"kubernetes API: GET /api/v1/namespaces/ns1/pods/p: connection refused", cnicode.TryAgainLater},
		{&APIError{Op: "reading pod ns1/p", Status: 403, Err: errors.New(`pods "p" is forbidden`)},
			`kubernetes API: reading pod ns1/p: HTTP 403: pods "p" is forbidden`, cnicode.KubernetesAPI},
	}
	for _, tt := range tests {
		t.Run(tt.wantText, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.wantText {
				t.Errorf("Error() = %q, want %q", got, tt.wantText)
			}
			if got := tt.err.CNICode(); got != tt.wantCode {
				t.Errorf("CNICode() = %d, want %d", got, tt.wantCode)
			}
			if !errors.Is(fmt.Errorf("wrapped: %w", tt.err), tt.err.Err) {
				t.Error("the cause is not reachable with errors.Is")
			}
		})
	}
}

// TestPodRefIs: a reference names a pod by namespace and name, and by UID
// when it has one, except a static pod, whose API object is a mirror.
func TestPodRefIs(t *testing.T) {
	pod := &Pod{Namespace: "ns", Name: "p", UID: "u1"}
	static := &Pod{Namespace: "ns", Name: "p", UID: "mirror", Annotations: map[string]string{ConfigSourceAnnotation: "file"}}
	tests := []struct {
		ref  PodRef
		pod  *Pod
		want bool
	}{
		{PodRef{Namespace: "ns", Name: "p", UID: "u1"}, pod, true},
		{PodRef{Namespace: "ns", Name: "p"}, pod, true},
		{PodRef{Namespace: "ns", Name: "p", UID: "u0"}, pod, false},
		{PodRef{Namespace: "ns", Name: "q", UID: "u1"}, pod, false},
		{PodRef{Namespace: "other", Name: "p"}, pod, false},
		{PodRef{Namespace: "ns", Name: "p", UID: "u1"}, static, true},
		{PodRef{Namespace: "other", Name: "p", UID: "u1"}, static, false},
	}
	for _, tt := range tests {
		if got := tt.ref.Is(tt.pod); got != tt.want {
			t.Errorf("%+v.Is(%+v) = %v, want %v", tt.ref, tt.pod, got, tt.want)
		}
	}
}

// TestRecordDrop: Drop removes the attachment of one interface and keeps the
// others in order.
func TestRecordDrop(t *testing.T) {
	r := &Record{Attachments: []Attachment{{IfName: "eth0"}, {IfName: "net1"}, {IfName: "net2"}}}
	r.Drop("net1")
	r.Drop("absent")
	if len(r.Attachments) != 2 || r.Attachments[0].IfName != "eth0" || r.Attachments[1].IfName != "net2" {
		t.Errorf("after Drop: %+v, want eth0, net2", r.Attachments)
	}
}
