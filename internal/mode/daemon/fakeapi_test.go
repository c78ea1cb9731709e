package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// miniAPI plays the API server for Run: list and watch of pods and NADs (with
// streamed initial events, as client-go asks first), the pod status PATCH and
// events. With broken set, every request gets a 500, so the caches never fill.
type miniAPI struct {
	srv    *httptest.Server
	stop   chan struct{}
	broken bool
	pods   []map[string]any

	mu      sync.Mutex
	patches []apiCall
	events  []apiCall
	reads   []apiCall
}

// apiCall is a request the fake received, with its body.
type apiCall struct {
	Method, Path, ContentType string
	Body                      []byte
}

func newMiniAPI(t *testing.T, broken bool, pods ...map[string]any) *miniAPI {
	t.Helper()
	a := &miniAPI{stop: make(chan struct{}), broken: broken, pods: pods}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(func() {
		close(a.stop)
		a.srv.Close()
	})
	return a
}

// pod is a pod object as the API server sends it.
func pod(ns, name, uid, node string) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"namespace": ns, "name": name, "uid": uid, "resourceVersion": "5"},
		"spec":     map[string]any{"nodeName": node, "containers": []any{map[string]any{"name": "c", "image": "i"}}},
	}
}

func (a *miniAPI) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (a *miniAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	call := apiCall{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Body: body}
	if a.broken {
		a.writeJSON(w, http.StatusInternalServerError, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500, "message": "etcd is down"})
		return
	}
	switch {
	case r.URL.Path == "/api/v1/pods":
		a.listOrWatch(w, r, "v1", "Pod", a.pods)
	case r.URL.Path == "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions":
		a.listOrWatch(w, r, "k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition", nil)
	case r.URL.Path == "/apis/resource.k8s.io/v1":
		// An API server without DRA: the daemon goes without it.
		a.writeJSON(w, http.StatusNotFound, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound"})
	case r.Method == http.MethodPatch:
		a.mu.Lock()
		a.patches = append(a.patches, call)
		a.mu.Unlock()
		a.writeJSON(w, http.StatusOK, a.pods[0])
	case r.Method == http.MethodPost:
		a.mu.Lock()
		a.events = append(a.events, call)
		a.mu.Unlock()
		a.writeJSON(w, http.StatusCreated, json.RawMessage(body))
	default:
		a.mu.Lock()
		a.reads = append(a.reads, call)
		a.mu.Unlock()
		a.writeJSON(w, http.StatusNotFound, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound"})
	}
}

func (a *miniAPI) listOrWatch(w http.ResponseWriter, r *http.Request, apiVersion, kind string, items []map[string]any) {
	if items == nil {
		items = []map[string]any{}
	}
	q := r.URL.Query()
	if q.Get("watch") != "true" {
		a.writeJSON(w, http.StatusOK, map[string]any{"apiVersion": apiVersion, "kind": kind + "List", "metadata": map[string]any{"resourceVersion": "10"}, "items": items})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	if q.Get("sendInitialEvents") == "true" {
		for _, it := range items {
			_ = enc.Encode(map[string]any{"type": "ADDED", "object": it})
		}
		_ = enc.Encode(map[string]any{"type": "BOOKMARK", "object": map[string]any{"apiVersion": apiVersion, "kind": kind,
			"metadata": map[string]any{"resourceVersion": "10", "annotations": map[string]string{"k8s.io/initial-events-end": "true"}}}})
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	select {
	case <-r.Context().Done():
	case <-a.stop:
	}
}

// kubeconfig writes a kubeconfig for the fake into dir and returns its path.
func (a *miniAPI) kubeconfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "kubeconfig")
	kc := `apiVersion: v1
kind: Config
current-context: test
contexts: [{name: test, context: {cluster: fake, user: daemon}}]
clusters: [{name: fake, cluster: {server: "` + a.srv.URL + `"}}]
users: [{name: daemon, user: {token: daemon-token}}]
`
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
