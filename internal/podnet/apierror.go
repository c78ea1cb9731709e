package podnet

import (
	"fmt"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

// APIError is a failed request to the Kubernetes API server, as both API
// adapters report it (the thin plugin's plain HTTP client and the daemon's
// informer cache), so the engine and the operator see one shape. Transient
// failures (unreachable server, timeouts, 429 and 5xx) carry CNI code 11 and the
// runtime retries; others (401, 403, 422...) carry code 107. It links no net/http:
// the engine, which imports this package, must not.
type APIError struct {
	// Op names the request: "GET /api/v1/namespaces/ns1/pods/p", "getting pod ns1/p".
	Op string
	// Status is the HTTP status, 0 when no answer came.
	Status    int
	Err       error
	Transient bool
}

func (e *APIError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("kubernetes API: %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("kubernetes API: %s: HTTP %d: %v", e.Op, e.Status, e.Err)
}

func (e *APIError) Unwrap() error { return e.Err }

// CNICode reports TryAgainLater for transient failures, KubernetesAPI otherwise.
func (e *APIError) CNICode() uint {
	if e.Transient {
		return cnicode.TryAgainLater
	}
	return cnicode.KubernetesAPI
}

// PodRecreatedError says the API server refused to write a pod's status because
// the pod of that name is not the one with the UID given: it was deleted and
// recreated under the same name (a StatefulSet pod) while the sandbox was being
// set up. The sandbox belongs to a pod that no longer exists.
type PodRecreatedError struct {
	// Pod is the pod the patch was for, with its UID.
	Pod PodRef
	// Err is the API server's refusal.
	Err *APIError
}

func (e *PodRecreatedError) Error() string {
	return fmt.Sprintf("pod %s: the pod of that name is no longer UID %s (it was deleted and recreated), so its network-status is not written: %v",
		e.Pod, e.Pod.UID, e.Err)
}

func (e *PodRecreatedError) Unwrap() error { return e.Err }

// CNICode reports PodUIDMismatch.
func (e *PodRecreatedError) CNICode() uint { return cnicode.PodUIDMismatch }
