package apicache

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// request is one request the fake API server received.
type request struct {
	Method, Path string
	Query        url.Values
	ContentType  string
	Body         []byte
}

// watching reports whether the request is a watch.
func (r request) watching() bool { return r.Query.Get("watch") == "true" }

// fakeAPI plays just enough of an API server for the cache's clients: list and
// watch (with and without streamed initial events) of pods and NADs, filtered by
// a spec.nodeName field selector as the real one does; GET of one object; the
// pod status PATCH; event creation; /readyz. Objects in pods and nads are
// listed; objects in latePods and lateNADs are only answered to a GET of the
// object, like objects created after the cache's list. fail, when set, answers
// instead for the requests it returns true for.
type fakeAPI struct {
	srv  *httptest.Server
	stop chan struct{}

	mu       sync.Mutex
	pods     []corev1.Pod
	nads     []nadv1.NetworkAttachmentDefinition
	latePods []corev1.Pod
	lateNADs []nadv1.NetworkAttachmentDefinition
	fail     func(r request) (status int, ok bool)
	reqs     []request
	events   chan corev1.Event
	// hangups receives the path of each watch the client closed while the
	// server still held it open.
	hangups chan string
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{stop: make(chan struct{}), events: make(chan corev1.Event, 16), hangups: make(chan string, 64)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.stop)
		f.srv.Close()
	})
	return f
}

// config is a client configuration for the fake, without client-side rate
// limits.
func (f *fakeAPI) config() *rest.Config {
	return &rest.Config{Host: f.srv.URL, QPS: 1000, Burst: 1000}
}

func (f *fakeAPI) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

// objectReads are the requests that read or write one object, as opposed to
// the informers' lists and watches.
func (f *fakeAPI) objectReads() []request {
	var out []request
	for _, r := range f.requests() {
		if r.Path != "/api/v1/pods" && r.Path != "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions" && r.Method == http.MethodGet {
			out = append(out, r)
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func status(code int, reason metav1.StatusReason, msg string) *metav1.Status {
	return &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
		Code: int32(code), Reason: reason, Message: msg}
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), ContentType: r.Header.Get("Content-Type"), Body: body}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		if code, ok := fail(req); ok {
			if code == 0 { // hang until the client gives up
				f.hang(r)
				return
			}
			writeJSON(w, code, status(code, "", fmt.Sprintf("scripted %d", code)))
			return
		}
	}
	const nadPrefix = "/apis/k8s.cni.cncf.io/v1/"
	switch {
	case req.Path == "/readyz":
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ok")
	case req.Path == "/api/v1/pods":
		f.listOrWatch(w, r, req, "v1", "Pod", f.podItems(req.Query.Get("fieldSelector")))
	case req.Path == nadPrefix+"network-attachment-definitions":
		f.listOrWatch(w, r, req, "k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition", f.nadItems())
	case strings.HasPrefix(req.Path, "/api/v1/namespaces/") && strings.HasSuffix(req.Path, "/events") && req.Method == http.MethodPost:
		var ev corev1.Event
		_ = json.Unmarshal(body, &ev)
		f.events <- ev
		writeJSON(w, http.StatusCreated, ev)
	case strings.HasPrefix(req.Path, "/api/v1/namespaces/"):
		f.pod(w, req)
	case strings.HasPrefix(req.Path, nadPrefix+"namespaces/"):
		f.nad(w, req)
	default:
		writeJSON(w, http.StatusNotFound, status(http.StatusNotFound, metav1.StatusReasonNotFound, "no route "+req.Path))
	}
}

func (f *fakeAPI) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-f.stop:
	}
}

// podItems are the listed pods the field selector selects.
func (f *fakeAPI) podItems(selector string) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	node, scoped := strings.CutPrefix(selector, "spec.nodeName=")
	var out []any
	for _, p := range f.pods {
		if !scoped || p.Spec.NodeName == node {
			p.TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
			out = append(out, p)
		}
	}
	return out
}

func (f *fakeAPI) nadItems() []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []any
	for _, n := range f.nads {
		n.TypeMeta = metav1.TypeMeta{Kind: "NetworkAttachmentDefinition", APIVersion: "k8s.cni.cncf.io/v1"}
		out = append(out, n)
	}
	return out
}

// listOrWatch answers a list, or a watch: one that asks for the initial events
// streams the items and the bookmark that ends them, as a watch-list capable
// server does; then every watch stays open with nothing new to say.
func (f *fakeAPI) listOrWatch(w http.ResponseWriter, r *http.Request, req request, apiVersion, kind string, items []any) {
	if !req.watching() {
		writeJSON(w, http.StatusOK, map[string]any{
			"apiVersion": apiVersion, "kind": kind + "List", "metadata": map[string]any{"resourceVersion": "10"}, "items": items,
		})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	if req.Query.Get("sendInitialEvents") == "true" {
		for _, it := range items {
			_ = enc.Encode(map[string]any{"type": "ADDED", "object": it})
		}
		_ = enc.Encode(map[string]any{"type": "BOOKMARK", "object": map[string]any{
			"apiVersion": apiVersion, "kind": kind,
			"metadata": map[string]any{"resourceVersion": "10", "annotations": map[string]string{metav1.InitialEventsAnnotationKey: "true"}},
		}})
	}
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	select {
	case <-r.Context().Done():
		select {
		case f.hangups <- req.Path:
		default:
		}
	case <-f.stop:
	}
}

// pod answers GET and the status PATCH of one pod.
func (f *fakeAPI) pod(w http.ResponseWriter, req request) {
	parts := strings.Split(strings.TrimPrefix(req.Path, "/api/v1/namespaces/"), "/")
	if len(parts) < 3 || parts[1] != "pods" {
		writeJSON(w, http.StatusNotFound, status(http.StatusNotFound, metav1.StatusReasonNotFound, "no route"))
		return
	}
	ns, name := parts[0], parts[2]
	f.mu.Lock()
	var found *corev1.Pod
	for _, list := range [][]corev1.Pod{f.pods, f.latePods} {
		for i := range list {
			if list[i].Namespace == ns && list[i].Name == name {
				p := list[i]
				found = &p
			}
		}
	}
	f.mu.Unlock()
	if found == nil {
		writeJSON(w, http.StatusNotFound, status(http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("pods %q not found", name)))
		return
	}
	found.TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
	writeJSON(w, http.StatusOK, found)
}

// nad answers GET of one NAD.
func (f *fakeAPI) nad(w http.ResponseWriter, req request) {
	parts := strings.Split(strings.TrimPrefix(req.Path, "/apis/k8s.cni.cncf.io/v1/namespaces/"), "/")
	if len(parts) != 3 {
		writeJSON(w, http.StatusNotFound, status(http.StatusNotFound, metav1.StatusReasonNotFound, "no route"))
		return
	}
	ns, name := parts[0], parts[2]
	f.mu.Lock()
	var found *nadv1.NetworkAttachmentDefinition
	for _, list := range [][]nadv1.NetworkAttachmentDefinition{f.nads, f.lateNADs} {
		for i := range list {
			if list[i].Namespace == ns && list[i].Name == name {
				n := list[i]
				found = &n
			}
		}
	}
	f.mu.Unlock()
	if found == nil {
		writeJSON(w, http.StatusNotFound, status(http.StatusNotFound, metav1.StatusReasonNotFound,
			fmt.Sprintf("network-attachment-definitions.k8s.cni.cncf.io %q not found", name)))
		return
	}
	found.TypeMeta = metav1.TypeMeta{Kind: "NetworkAttachmentDefinition", APIVersion: "k8s.cni.cncf.io/v1"}
	writeJSON(w, http.StatusOK, found)
}
