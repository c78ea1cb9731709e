package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/internal/podnet"
)

const podJSON = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"team-a","uid":"uid-1",
 "annotations":{"k8s.v1.cni.cncf.io/networks":"net1"},"labels":{"app":"web"}},
 "spec":{"nodeName":"node1","containers":[{"name":"c","image":"i"}]},"status":{"phase":"Pending"}}`

const nadJSON = `{"apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinition",
 "metadata":{"name":"net1","namespace":"team-a","annotations":{"k8s.v1.cni.cncf.io/resourceName":"r/x"}},
 "spec":{"config":"{\"cniVersion\":\"1.0.0\",\"type\":\"bridge\"}"}}`

const notFoundJSON = `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"not there","reason":"NotFound","code":404}`

// TestGetDecodes: a pod and a NAD are read with one GET of their path, with our
// headers and bearer token, and decoded into podnet's types.
func TestGetDecodes(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantPath string
		get      func(*Client) (any, error)
		want     any
	}{
		{
			name: "pod", body: podJSON, wantPath: "/api/v1/namespaces/team-a/pods/web",
			get: func(c *Client) (any, error) { return c.Pod(context.Background(), "team-a", "web") },
			want: &podnet.Pod{Namespace: "team-a", Name: "web", UID: "uid-1",
				Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": "net1"}},
		},
		{
			name: "NAD", body: nadJSON, wantPath: "/apis/k8s.cni.cncf.io/v1/namespaces/team-a/network-attachment-definitions/net1",
			get: func(c *Client) (any, error) { return c.NAD(context.Background(), "team-a", "net1") },
			want: &podnet.NAD{Namespace: "team-a", Name: "net1", Config: `{"cniVersion":"1.0.0","type":"bridge"}`,
				Annotations: map[string]string{podnet.ResourceNameAnnotation: "r/x"}},
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
				t.Errorf("decoded object (-want +got):\n%s", diff)
			}
			reqs := s.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			got2 := []string{r.Method, r.Path, r.Query, r.Header.Get("Authorization"), r.Header.Get("Accept"), r.Header.Get("User-Agent")}
			want2 := []string{http.MethodGet, tt.wantPath, "", "Bearer secret-token", "application/json", "multus-polynet"}
			if diff := cmp.Diff(want2, got2); diff != "" {
				t.Errorf("request [method path query authorization accept user-agent] (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNotFound: a 404 is a *podnet.NotFoundError naming the object, with no
// retry.
func TestNotFound(t *testing.T) {
	tests := []struct {
		name string
		get  func(*Client) error
		want podnet.NotFoundError
	}{
		{"pod", func(c *Client) error { _, err := c.Pod(context.Background(), "ns", "gone"); return err },
			podnet.NotFoundError{Kind: "pod", Namespace: "ns", Name: "gone"}},
		{"NAD", func(c *Client) error { _, err := c.NAD(context.Background(), "ns", "gone"); return err },
			podnet.NotFoundError{Kind: "NetworkAttachmentDefinition", Namespace: "ns", Name: "gone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) {
				answer(w, http.StatusNotFound, notFoundJSON)
			})
			err := tt.get(plainClient(t, s, 5*time.Second))
			var nf *podnet.NotFoundError
			if !errors.As(err, &nf) {
				t.Fatalf("error %v (%T), want *podnet.NotFoundError", err, err)
			}
			if diff := cmp.Diff(tt.want, *nf); diff != "" {
				t.Errorf("NotFoundError (-want +got):\n%s", diff)
			}
			if n := len(s.requests()); n != 1 {
				t.Errorf("%d requests, want 1: a 404 is not retried", n)
			}
		})
	}
}

// TestTransientRetried: 429 and 5xx answers are retried within the budget until
// one succeeds.
func TestTransientRetried(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			s := newAPIServer(t, false, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n < 2 {
					answer(w, status, `{"kind":"Status","message":"busy"}`)
					return
				}
				answer(w, http.StatusOK, podJSON)
			})
			pod, err := plainClient(t, s, time.Minute).Pod(context.Background(), "team-a", "web")
			if err != nil {
				t.Fatalf("Pod after two transient failures: %v", err)
			}
			if pod.UID != "uid-1" {
				t.Errorf("pod UID %q, want uid-1", pod.UID)
			}
			if n := len(s.requests()); n != 3 {
				t.Errorf("%d requests, want 3 (two failures, one success)", n)
			}
		})
	}
}

// TestTransientBudgetSpent: a server that keeps failing is retried until the
// budget is spent, then the error is transient (CNI code 11) and names the
// request and the server's message.
func TestTransientBudgetSpent(t *testing.T) {
	s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) {
		answer(w, http.StatusServiceUnavailable, `{"kind":"Status","message":"etcd is sulking"}`)
	})
	_, err := plainClient(t, s, time.Second).Pod(context.Background(), "team-a", "web")
	var apiErr *podnet.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T), want *podnet.APIError", err, err)
	}
	if !apiErr.Transient || apiErr.CNICode() != cnicode.TryAgainLater || apiErr.Status != http.StatusServiceUnavailable {
		t.Errorf("error %+v: want transient, status 503, CNI code %d (got %d)", apiErr, cnicode.TryAgainLater, apiErr.CNICode())
	}
	for _, part := range []string{"GET", "/api/v1/namespaces/team-a/pods/web", "503", "etcd is sulking"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err, part)
		}
	}
	// A budget of 1s with backoffs of 100ms, 200ms, 400ms... allows a few tries,
	// never an unbounded number.
	if n := len(s.requests()); n < 2 || n > 8 {
		t.Errorf("%d requests, want a few retries within the budget", n)
	}
}

// TestConnectionRefused: an API server that is not listening is a transient
// error, after retries, with CNI code 11.
func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := New(&Config{Host: "http://" + addr}, time.Second, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.NAD(context.Background(), "ns", "net1")
	var apiErr *podnet.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T), want *podnet.APIError", err, err)
	}
	if !apiErr.Transient || apiErr.CNICode() != cnicode.TryAgainLater || apiErr.Status != 0 {
		t.Errorf("error %+v: want transient with no status", apiErr)
	}
	if !strings.Contains(err.Error(), "network-attachment-definitions/net1") {
		t.Errorf("error %q does not name the NAD's path", err)
	}
}

// TestRequestTimeoutTransient: an answer slower than the per-request timeout is
// transient and retried.
func TestRequestTimeoutTransient(t *testing.T) {
	s := newAPIServer(t, false, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			<-r.Context().Done() // hang until the client gives up
			return
		}
		answer(w, http.StatusOK, podJSON)
	})
	c, err := New(&Config{Host: s.URL}, 500*time.Millisecond, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pod(context.Background(), "team-a", "web"); err != nil {
		t.Fatalf("Pod after one timed-out request: %v", err)
	}
	if n := len(s.requests()); n < 2 {
		t.Errorf("%d requests, want the timed-out one retried", n)
	}
}

// TestNotTransientNotRetried: 401, 403 and 422 are answered at once with CNI
// code 107 and an error that names the object's path and the server's message.
func TestNotTransientNotRetried(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusUnprocessableEntity, http.StatusBadRequest} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) {
				answer(w, status, `{"kind":"Status","message":"pods \"web\" is forbidden: no"}`)
			})
			_, err := plainClient(t, s, time.Minute).Pod(context.Background(), "team-a", "web")
			var apiErr *podnet.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v (%T), want *podnet.APIError", err, err)
			}
			if apiErr.Transient || apiErr.CNICode() != cnicode.KubernetesAPI || apiErr.Status != status {
				t.Errorf("error %+v: want not transient, status %d, CNI code %d", apiErr, status, cnicode.KubernetesAPI)
			}
			for _, part := range []string{"team-a/pods/web", `is forbidden: no`} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %q", err, part)
				}
			}
			if n := len(s.requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

// TestCanceledContextStopsRetries: the caller's cancellation ends the retries at
// once, well before the budget.
func TestCanceledContextStopsRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) {
		cancel()
		answer(w, http.StatusServiceUnavailable, `{}`)
	})
	done := make(chan error, 1)
	go func() { _, err := plainClient(t, s, time.Hour).Pod(ctx, "ns", "p"); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Pod succeeded with a canceled context")
		}
	case <-time.After(time.Minute):
		t.Fatal("Pod kept retrying after its context was canceled")
	}
}

// TestUndecodableAnswer: a 2xx answer that is not JSON is an error naming the
// request.
func TestUndecodableAnswer(t *testing.T) {
	s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) { answer(w, http.StatusOK, "<html>proxy</html>") })
	_, err := plainClient(t, s, time.Second).Pod(context.Background(), "ns", "p")
	if err == nil || !strings.Contains(err.Error(), "decoding the answer") || !strings.Contains(err.Error(), "/pods/p") {
		t.Errorf("error %v, want one about decoding the answer of /pods/p", err)
	}
}

// TestPatchNetworkStatus: one merge PATCH of pods/status whose body names the
// annotation and the pod's UID (the API server's precondition), nothing else.
func TestPatchNetworkStatus(t *testing.T) {
	s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) { answer(w, http.StatusOK, podJSON) })
	value := `[{"name":"default/net1","interface":"net1"}]`
	ref := podnet.PodRef{Namespace: "team-a", Name: "web", UID: "uid-1"}
	if err := plainClient(t, s, time.Second).PatchNetworkStatus(context.Background(), ref, value); err != nil {
		t.Fatal(err)
	}
	reqs := s.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	got := []string{r.Method, r.Path, r.Query, r.Header.Get("Content-Type"), r.Header.Get("Authorization")}
	want := []string{http.MethodPatch, "/api/v1/namespaces/team-a/pods/web/status", "", "application/merge-patch+json", "Bearer secret-token"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request [method path query content-type authorization] (-want +got):\n%s", diff)
	}
	var body any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("patch body %q: %v", r.Body, err)
	}
	wantBody := map[string]any{"metadata": map[string]any{
		"uid":         "uid-1",
		"annotations": map[string]any{netstatus.Annotation: value},
	}}
	if diff := cmp.Diff(wantBody, body); diff != "" {
		t.Errorf("patch body (-want +got):\n%s", diff)
	}
}

// TestPatchNetworkStatusFailures: an optimistic-concurrency conflict (409),
// which a merge patch meets only when the API server gave up its own retries,
// is tried five times in all, then returned, not transient; a vanished pod
// (404) and a refusal (403) are returned at once. Each error names the status
// path. (A UID mismatch: TestPatchUIDMismatch.)
func TestPatchNetworkStatusFailures(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		message string
		reqs    int
	}{
		{"conflict", http.StatusConflict, `Operation cannot be fulfilled on pods \"p\": the object has been modified; please apply your changes to the latest version and try again`, 5},
		{"pod gone", http.StatusNotFound, `pods \"p\" not found`, 1},
		{"forbidden", http.StatusForbidden, `pods \"p\" is forbidden`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) {
				answer(w, tt.status, `{"kind":"Status","message":"`+tt.message+`"}`)
			})
			err := plainClient(t, s, time.Second).PatchNetworkStatus(context.Background(), podnet.PodRef{Namespace: "ns", Name: "p", UID: "uid-1"}, "[]")
			var apiErr *podnet.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tt.status || apiErr.Transient {
				t.Fatalf("error %v, want a non-transient podnet.APIError with status %d", err, tt.status)
			}
			var recreated *podnet.PodRecreatedError
			if errors.As(err, &recreated) {
				t.Errorf("error %v is a PodRecreatedError", err)
			}
			if !strings.Contains(err.Error(), "/namespaces/ns/pods/p/status") {
				t.Errorf("error %q does not name the status path", err)
			}
			if n := len(s.requests()); n != tt.reqs {
				t.Errorf("%d requests, want %d", n, tt.reqs)
			}
		})
	}
}

// TestEvent: a core/v1 Event is POSTed to the pod's namespace, about the pod
// with its UID, with our component and host.
func TestEvent(t *testing.T) {
	s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) { answer(w, http.StatusCreated, `{}`) })
	c := plainClient(t, s, time.Second)
	c.Host = "node1"
	ref := podnet.PodRef{Namespace: "team-a", Name: "web", UID: "uid-1"}
	if err := c.Event(context.Background(), ref, "Normal", "AddedInterface", "Add net1 [10.0.0.2/24] from team-a/net1"); err != nil {
		t.Fatal(err)
	}
	reqs := s.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	got := []string{r.Method, r.Path, r.Header.Get("Content-Type")}
	want := []string{http.MethodPost, "/api/v1/namespaces/team-a/events", "application/json"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request [method path content-type] (-want +got):\n%s", diff)
	}
	var ev map[string]any
	if err := json.Unmarshal(r.Body, &ev); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"firstTimestamp", "lastTimestamp"} {
		ts, _ := ev[key].(string)
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Errorf("%s %q is not RFC 3339: %v", key, ts, err)
		}
		delete(ev, key)
	}
	wantEv := map[string]any{
		"apiVersion": "v1", "kind": "Event",
		"metadata": map[string]any{"generateName": "web.", "namespace": "team-a"},
		"involvedObject": map[string]any{
			"apiVersion": "v1", "kind": "Pod", "namespace": "team-a", "name": "web", "uid": "uid-1",
		},
		"type": "Normal", "reason": "AddedInterface", "message": "Add net1 [10.0.0.2/24] from team-a/net1",
		"source": map[string]any{"component": "multus", "host": "node1"}, "count": float64(1),
		"reportingComponent": "multus", "reportingInstance": "node1",
	}
	if diff := cmp.Diff(wantEv, ev); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
}

// TestEventMessageTruncated: a long message is cut to 1024 bytes, ending in
// "...", so that the API server does not refuse the event.
func TestEventMessageTruncated(t *testing.T) {
	s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) { answer(w, http.StatusCreated, `{}`) })
	long := strings.Repeat("x", 5000)
	if err := plainClient(t, s, time.Second).Event(context.Background(), podnet.PodRef{Namespace: "ns", Name: "p"}, "Warning", "R", long); err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(s.requests()[0].Body, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Message) != 1024 || !strings.HasSuffix(ev.Message, "...") {
		t.Errorf("message of %d bytes ending %q, want 1024 ending ...", len(ev.Message), ev.Message[len(ev.Message)-5:])
	}
}

// TestReady: /readyz is asked once, without retries, and a refusal is an error.
func TestReady(t *testing.T) {
	tests := []struct {
		status  int
		wantErr bool
	}{{http.StatusOK, false}, {http.StatusUnauthorized, true}, {http.StatusServiceUnavailable, true}}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) { answer(w, tt.status, "ok") })
			err := plainClient(t, s, time.Minute).Ready(context.Background())
			if (err != nil) != tt.wantErr {
				t.Errorf("Ready: %v, want error %v", err, tt.wantErr)
			}
			reqs := s.requests()
			if len(reqs) != 1 || reqs[0].Path != "/readyz" || reqs[0].Method != http.MethodGet {
				t.Errorf("requests %+v, want one GET /readyz", reqs)
			}
		})
	}
}
