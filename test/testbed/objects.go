package testbed

import (
	"context"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// NodeName is the node that test pods are bound to: nothing schedules them, so the
// tests set spec.nodeName themselves, as the scheduler would.
const NodeName = "node-1"

// CreateNamespace creates a namespace for one test (one that exists already is
// fine). The create waits for nothing but the API server: no controller runs to
// make a default ServiceAccount, and none is needed. Like every call below, it is
// bounded by CallTimeout of its own within ctx; pass a test's Context, not a
// budget for the whole test.
func CreateNamespace(ctx context.Context, tb testing.TB, kc kubernetes.Interface, name string) {
	tb.Helper()
	ctx, cancel := callContext(ctx)
	defer cancel()
	if err := ensureNamespace(ctx, kc, name); err != nil {
		tb.Fatal(err)
	}
}

// CreatePod creates a pod bound to NodeName with the given annotations. It stays
// Pending: no kubelet runs it, the test acts as the runtime.
func CreatePod(ctx context.Context, tb testing.TB, kc kubernetes.Interface, namespace, name string, annotations map[string]string) *corev1.Pod {
	tb.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: annotations},
		Spec: corev1.PodSpec{
			NodeName:   NodeName,
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
	ctx, cancel := callContext(ctx)
	defer cancel()
	created, err := kc.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("creating pod %s/%s: %v", namespace, name, err)
	}
	return created
}

// CreateNAD creates a NetworkAttachmentDefinition with the given CNI config (which
// may be empty, for an on-disk config) and annotations.
func CreateNAD(ctx context.Context, tb testing.TB, nc nadclient.Interface, namespace, name, config string, annotations map[string]string) *nadv1.NetworkAttachmentDefinition {
	tb.Helper()
	nad := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: annotations},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: config},
	}
	ctx, cancel := callContext(ctx)
	defer cancel()
	created, err := nc.K8sCniCncfIoV1().NetworkAttachmentDefinitions(namespace).Create(ctx, nad, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("creating NAD %s/%s: %v", namespace, name, err)
	}
	return created
}
