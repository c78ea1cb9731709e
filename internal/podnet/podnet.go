// Package podnet holds the few fields of Kubernetes objects that the engine reads,
// as plain values. The thin plugin decodes API responses straight into these, so it
// links none of k8s.io/api's thousands of generated types (every package a per-pod
// binary links costs start-up time); the daemon converts its informer objects into
// them.
package podnet

import "fmt"

// Annotations the engine reads or writes, besides the selection and status
// annotations, which their own packages define.
const (
	// ResourceNameAnnotation on a NAD names the device-plugin resource whose
	// allocated device is handed to the delegate.
	ResourceNameAnnotation = "k8s.v1.cni.cncf.io/resourceName"
	// ConfigSourceAnnotation on a pod is set by the kubelet; any value but "api"
	// marks a static pod, whose mirror pod has a UID other than the sandbox's.
	ConfigSourceAnnotation = "kubernetes.io/config.source"
)

// PodRef identifies a pod the way CNI_ARGS do. A typed value instead of loose
// strings, so a pod name can never be passed where a namespace is expected.
type PodRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid,omitempty"`
}

// String returns "namespace/name".
func (r PodRef) String() string { return r.Namespace + "/" + r.Name }

// Is reports whether pod is the pod r names: the same namespace and name, and
// the same UID when r has one, unless the pod is static, whose API object is a
// mirror with a UID of its own. A sandbox's K8S_POD_UID and a record's pod are
// such references: a pod deleted and recreated under its name is another pod.
func (r PodRef) Is(pod *Pod) bool {
	if r.Namespace != pod.Namespace || r.Name != pod.Name {
		return false
	}
	return r.UID == "" || r.UID == pod.UID || pod.Static()
}

// Pod is what the engine knows of a pod.
type Pod struct {
	Namespace   string
	Name        string
	UID         string
	Annotations map[string]string
	// Claims names the pod's DRA ResourceClaims, in its namespace, each once:
	// those its spec names (resourceClaimName), those made for it from
	// templates (status.resourceClaimStatuses), and the claim of its extended
	// resources (status.extendedResourceClaimStatus).
	Claims []string
	// Deleting is set once the pod has a deletion timestamp.
	Deleting bool
}

// Ref returns the pod's reference, with its UID.
func (p *Pod) Ref() PodRef { return PodRef{Namespace: p.Namespace, Name: p.Name, UID: p.UID} }

// Static reports whether the kubelet runs the pod from a manifest file rather than
// from the API: its API object is a mirror with a different UID.
func (p *Pod) Static() bool {
	src, ok := p.Annotations[ConfigSourceAnnotation]
	return ok && src != "api"
}

// NAD is what the engine knows of a NetworkAttachmentDefinition.
type NAD struct {
	Namespace   string
	Name        string
	Config      string
	Annotations map[string]string
}

// Ref returns "namespace/name", the name of the network in events and status.
func (n *NAD) Ref() string { return n.Namespace + "/" + n.Name }

// NotFoundError says an object does not exist; callers branch on it with errors.As.
type NotFoundError struct {
	Kind      string
	Namespace string
	Name      string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s %s/%s not found", e.Kind, e.Namespace, e.Name)
}
