package podnet

import (
	"errors"
	"fmt"
	"testing"
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
