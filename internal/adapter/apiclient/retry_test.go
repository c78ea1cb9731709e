package apiclient

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// fakeClock is a client's clock in which waiting takes no time: sleep moves
// the clock on and records how long it was asked to wait.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	waits []time.Duration
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) sleep(_ context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
	f.waits = append(f.waits, d)
	return nil
}

// onFakeClock makes c retry on a fake clock, returned.
func onFakeClock(c *Client) *fakeClock {
	f := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	c.now, c.sleep = f.now, f.sleep
	return f
}

// TestRetryAfterHonoured: between tries of a 429 or 5xx the client waits what
// the answer's Retry-After asks (in seconds, as the API server sends it), at
// least its own backoff (100 ms doubling to 1 s), which is all it waits when
// there is no usable Retry-After.
func TestRetryAfterHonoured(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name       string
		status     int
		retryAfter string
		want       []time.Duration
	}{
		{"429 Retry-After 3", http.StatusTooManyRequests, "3", []time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second}},
		{"503 Retry-After 2", http.StatusServiceUnavailable, "2", []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second}},
		{"500 Retry-After 1", http.StatusInternalServerError, "1", []time.Duration{time.Second, time.Second, time.Second}},
		{"429 Retry-After 0: the backoff", http.StatusTooManyRequests, "0", []time.Duration{100 * ms, 200 * ms, 400 * ms}},
		{"429 without Retry-After", http.StatusTooManyRequests, "", []time.Duration{100 * ms, 200 * ms, 400 * ms}},
		{"429 Retry-After as a date: ignored", http.StatusTooManyRequests, "Wed, 21 Oct 2015 07:28:00 GMT", []time.Duration{100 * ms, 200 * ms, 400 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newAPIServer(t, false, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n < 3 {
					if tt.retryAfter != "" {
						w.Header().Set("Retry-After", tt.retryAfter)
					}
					answer(w, tt.status, `{"kind":"Status","message":"busy"}`)
					return
				}
				answer(w, http.StatusOK, podJSON)
			})
			c := plainClient(t, s, time.Minute)
			clock := onFakeClock(c)
			if _, err := c.Pod(context.Background(), "team-a", "web"); err != nil {
				t.Fatalf("Pod after three refusals: %v", err)
			}
			if diff := cmp.Diff(tt.want, clock.waits); diff != "" {
				t.Errorf("waits between tries (-want +got):\n%s", diff)
			}
			if n := len(s.requests()); n != 4 {
				t.Errorf("%d requests, want 4", n)
			}
		})
	}
}

// TestRetryAfterWithinBudget: the waits Retry-After asks for count against the
// retry budget: with 10 s and Retry-After 4, the client tries at 0, 4 and 8 s
// and gives up rather than wait until 12 s.
func TestRetryAfterWithinBudget(t *testing.T) {
	s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "4")
		answer(w, http.StatusTooManyRequests, `{"kind":"Status","message":"slow down"}`)
	})
	c := plainClient(t, s, 10*time.Second)
	clock := onFakeClock(c)
	_, err := c.Pod(context.Background(), "team-a", "web")
	var apiErr *podnet.APIError
	if !errors.As(err, &apiErr) || apiErr.CNICode() != cnicode.TryAgainLater {
		t.Fatalf("error %v, want a transient APIError", err)
	}
	if diff := cmp.Diff([]time.Duration{4 * time.Second, 4 * time.Second}, clock.waits); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
	if n := len(s.requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// TestRetryAfterBeyondBudget: a server that asks to be retried later than the
// retry budget allows is not hammered in the meantime: one request, then the
// transient error (code 11), so the runtime retries when it sees fit.
func TestRetryAfterBeyondBudget(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "30")
				answer(w, status, `{"kind":"Status","message":"too many requests, please try again later"}`)
			})
			c := plainClient(t, s, 2*time.Second)
			clock := onFakeClock(c)
			_, err := c.Pod(context.Background(), "ns", "p")
			var apiErr *podnet.APIError
			if !errors.As(err, &apiErr) || apiErr.CNICode() != cnicode.TryAgainLater {
				t.Fatalf("error %v, want a transient APIError", err)
			}
			if !strings.Contains(err.Error(), "retry after 30s") {
				t.Errorf("error %q does not say what the server asked", err)
			}
			if len(clock.waits) != 0 {
				t.Errorf("waited %v", clock.waits)
			}
			if n := len(s.requests()); n != 1 {
				t.Errorf("%d requests, want 1: the server asked for 30s, beyond the 2s budget", n)
			}
		})
	}
}

const uidConflictJSON = `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Operation cannot be fulfilled on pods \"p\": Precondition failed: UID in precondition: uid-1, UID in object meta: uid-2","reason":"Conflict","details":{"name":"p","kind":"pods"},"code":409}`

// uidInvalidJSON is what kube-apiserver v1.37 answers a merge patch whose
// metadata.uid is not the pod's (checked against the real server in
// test/e2e's TestStatusPatchUIDMismatch).
const uidInvalidJSON = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Pod \"p\" is invalid: metadata.uid: Invalid value: \"uid-1\": field is immutable","reason":"Invalid","details":{"name":"p","kind":"Pod","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: \"uid-1\": field is immutable","field":"metadata.uid"}]},"code":422}`

// TestPatchUIDMismatch: a patch refused because the pod of that name has
// another UID is a pod recreated under the same name: no retry can succeed,
// so there is exactly one request, and the error carries PodUIDMismatch (100)
// and names the pod and the UID the patch was for.
func TestPatchUIDMismatch(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"422 metadata.uid immutable", http.StatusUnprocessableEntity, uidInvalidJSON},
		{"409 UID precondition", http.StatusConflict, uidConflictJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newAPIServer(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) { answer(w, tt.status, tt.body) })
			err := plainClient(t, s, time.Minute).PatchNetworkStatus(context.Background(), podnet.PodRef{Namespace: "ns", Name: "p", UID: "uid-1"}, "[]")
			var coder cnicode.Coder
			if !errors.As(err, &coder) || coder.CNICode() != cnicode.PodUIDMismatch {
				t.Errorf("error %v, want CNI code %d", err, cnicode.PodUIDMismatch)
			}
			var recreated *podnet.PodRecreatedError
			if !errors.As(err, &recreated) || recreated.Err.Status != tt.status {
				t.Errorf("error %v, want a *podnet.PodRecreatedError keeping the server's %d", err, tt.status)
			}
			for _, part := range []string{"pod ns/p", "uid-1", "recreated", "/pods/p/status"} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %q", err, part)
				}
			}
			if n := len(s.requests()); n != 1 {
				t.Errorf("%d requests, want 1: a UID mismatch never succeeds on retry", n)
			}
		})
	}
}
