package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// objectMeta is the part of metadata we decode.
type objectMeta struct {
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace"`
	UID               string            `json:"uid"`
	Annotations       map[string]string `json:"annotations"`
	DeletionTimestamp *string           `json:"deletionTimestamp"`
}

// pod is the part of a pod we decode: its metadata, and the names of its
// ResourceClaims, in its spec and its status.
type pod struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		ResourceClaims []struct {
			ResourceClaimName string `json:"resourceClaimName"`
		} `json:"resourceClaims"`
	} `json:"spec"`
	Status struct {
		ResourceClaimStatuses []struct {
			ResourceClaimName string `json:"resourceClaimName"`
		} `json:"resourceClaimStatuses"`
		ExtendedResourceClaimStatus *struct {
			ResourceClaimName string `json:"resourceClaimName"`
		} `json:"extendedResourceClaimStatus"`
	} `json:"status"`
}

// Pod reads a pod.
func (c *Client) Pod(ctx context.Context, namespace, name string) (*podnet.Pod, error) {
	var obj pod
	path := fmt.Sprintf("/api/v1/namespaces/%s/pods/%s", escape(namespace), escape(name))
	if err := c.do(ctx, http.MethodGet, path, "", nil, &obj); err != nil {
		return nil, notFound(err, "pod", namespace, name)
	}
	return obj.podnet(), nil
}

func (p *pod) podnet() *podnet.Pod {
	m := p.Metadata
	var claims []string
	for _, c := range p.Spec.ResourceClaims {
		claims = append(claims, c.ResourceClaimName)
	}
	for _, c := range p.Status.ResourceClaimStatuses {
		claims = append(claims, c.ResourceClaimName)
	}
	if ext := p.Status.ExtendedResourceClaimStatus; ext != nil {
		claims = append(claims, ext.ResourceClaimName)
	}
	return &podnet.Pod{Namespace: m.Namespace, Name: m.Name, UID: m.UID, Annotations: m.Annotations,
		Claims: podnet.ClaimNames(claims...), Deleting: m.DeletionTimestamp != nil}
}

// NAD reads a NetworkAttachmentDefinition.
func (c *Client) NAD(ctx context.Context, namespace, name string) (*podnet.NAD, error) {
	var obj struct {
		Metadata objectMeta `json:"metadata"`
		Spec     struct {
			Config string `json:"config"`
		} `json:"spec"`
	}
	path := fmt.Sprintf("/apis/k8s.cni.cncf.io/v1/namespaces/%s/network-attachment-definitions/%s", escape(namespace), escape(name))
	if err := c.do(ctx, http.MethodGet, path, "", nil, &obj); err != nil {
		return nil, notFound(err, "NetworkAttachmentDefinition", namespace, name)
	}
	m := obj.Metadata
	return &podnet.NAD{Namespace: m.Namespace, Name: m.Name, Config: obj.Spec.Config, Annotations: m.Annotations}, nil
}

func notFound(err error, kind, namespace, name string) error {
	var apiErr *podnet.APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		return &podnet.NotFoundError{Kind: kind, Namespace: namespace, Name: name}
	}
	return err
}

// PatchNetworkStatus sets the network-status annotation with a JSON merge patch on
// the pods/status subresource. The patch names nothing but that annotation, so it
// can never overwrite what other controllers keep in the pod's status (a full
// UpdateStatus wipes resourceClaimStatuses: network-attachment-definition-client
// #84), and it carries the pod's UID, which the API server checks, so a new pod
// that took the name is never annotated with an old sandbox's networks: that
// refusal is a *PodRecreatedError, returned at once, since no retry can succeed.
// A merge patch has no resourceVersion, so an optimistic-concurrency conflict
// (409) only comes when the server gave up its own retries; it is tried again, up
// to five times in all.
func (c *Client) PatchNetworkStatus(ctx context.Context, ref podnet.PodRef, value string) error {
	body, err := netstatus.MergePatch(ref.UID, value)
	if err != nil {
		return err
	}
	path := fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/status", escape(ref.Namespace), escape(ref.Name))
	for attempt := 1; ; attempt++ {
		err = c.do(ctx, http.MethodPatch, path, "application/merge-patch+json", body, nil)
		var apiErr *podnet.APIError
		if err == nil || !errors.As(err, &apiErr) {
			return err
		}
		if uidMismatch(apiErr) {
			return &podnet.PodRecreatedError{Pod: ref, Err: apiErr}
		}
		if attempt == 5 || apiErr.Status != http.StatusConflict {
			return err
		}
	}
}

// uidMismatch reports whether the API server refused a patch because the UID it
// carries is not the object's. kube-apiserver answers a merge patch so with 422
// and a cause on metadata.uid (metadata.uid is immutable); an update with a UID
// precondition gets 409 "Precondition failed: UID in precondition", which has
// no cause to read, only its message. An optimistic-concurrency conflict is a
// 409 too, saying "the object has been modified".
func uidMismatch(err *podnet.APIError) bool {
	var st *apiStatus
	if !errors.As(err.Err, &st) {
		return false
	}
	switch err.Status {
	case http.StatusUnprocessableEntity:
		for _, c := range st.Details.Causes {
			if c.Field == "metadata.uid" {
				return true
			}
		}
	case http.StatusConflict:
		return strings.Contains(st.Message, "Precondition failed: UID in precondition")
	}
	return false
}

// Event records a core/v1 event on the pod.
func (c *Client) Event(ctx context.Context, ref podnet.PodRef, eventType, reason, message string) error {
	now := time.Now().UTC().Format(time.RFC3339)
	ev := map[string]any{
		"apiVersion": "v1",
		"kind":       "Event",
		"metadata":   map[string]any{"generateName": ref.Name + ".", "namespace": ref.Namespace},
		"involvedObject": map[string]any{
			"apiVersion": "v1", "kind": "Pod", "namespace": ref.Namespace, "name": ref.Name, "uid": ref.UID,
		},
		"type": eventType, "reason": reason, "message": truncate(message, 1024),
		"source":         map[string]any{"component": c.Component, "host": c.Host},
		"firstTimestamp": now, "lastTimestamp": now, "count": 1,
		"reportingComponent": c.Component, "reportingInstance": c.Host,
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	path := fmt.Sprintf("/api/v1/namespaces/%s/events", escape(ref.Namespace))
	return c.do(ctx, http.MethodPost, path, "application/json", body, nil)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// Ready checks that the API server answers /readyz and accepts our credentials: an
// invalid token is refused with 401 even there. One attempt, no retries: STATUS
// answers for now.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.once(ctx, http.MethodGet, "/readyz", "", nil, nil)
	return err
}
