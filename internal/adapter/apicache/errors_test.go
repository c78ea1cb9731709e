package apicache

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// TestLiveReadErrors: a failed live read is an *podnet.APIError naming the operation,
// transient (CNI code 11) for 429 and 5xx, code 107 for a refusal.
func TestLiveReadErrors(t *testing.T) {
	tests := []struct {
		status        int
		wantTransient bool
	}{
		{http.StatusForbidden, false},
		{http.StatusUnauthorized, false},
		{http.StatusInternalServerError, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusGatewayTimeout, true},
	}
	f := newFakeAPI(t)
	c := startCache(t, f, "node1")
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			f.mu.Lock()
			f.fail = func(r request) (int, bool) { return tt.status, !strings.HasSuffix(r.Path, "/pods") && !r.watching() }
			f.mu.Unlock()
			t.Cleanup(func() { f.mu.Lock(); f.fail = nil; f.mu.Unlock() })
			for _, get := range []func() error{
				func() error {
					_, err := c.Pod(context.Background(), podnet.PodRef{Namespace: "ns", Name: "p"})
					return err
				},
				func() error { _, err := c.NAD(context.Background(), "ns", "n"); return err },
			} {
				err := get()
				var apiErr *podnet.APIError
				if !errors.As(err, &apiErr) {
					t.Fatalf("error %v (%T), want *podnet.APIError", err, err)
				}
				if apiErr.Transient != tt.wantTransient {
					t.Errorf("%v: transient %v, want %v", err, apiErr.Transient, tt.wantTransient)
				}
				wantCode := cnicode.KubernetesAPI
				if tt.wantTransient {
					wantCode = cnicode.TryAgainLater
				}
				if apiErr.CNICode() != wantCode {
					t.Errorf("%v: CNI code %d, want %d", err, apiErr.CNICode(), wantCode)
				}
				if !strings.Contains(err.Error(), "reading ") {
					t.Errorf("error %q does not name the operation", err)
				}
			}
		})
	}
}

// TestLiveReadTimeoutTransient: a live read the API server does not answer in
// time is a transient failure (CNI code 11), as the thin plugin's client
// classifies it, whether the client's own timeout or the request's deadline
// ends it.
func TestLiveReadTimeoutTransient(t *testing.T) {
	f := newFakeAPI(t)
	cfg := f.config()
	cfg.Timeout = 300 * time.Millisecond
	c, err := New(cfg, "node1", "multus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := c.Start(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.fail = func(r request) (int, bool) { return 0, r.Path == "/api/v1/namespaces/ns/pods/p" } // hang
	f.mu.Unlock()
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"client timeout", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{"request deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			_, err := c.Pod(ctx, podnet.PodRef{Namespace: "ns", Name: "p"})
			var apiErr *podnet.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v (%T), want *podnet.APIError", err, err)
			}
			if !apiErr.Transient || apiErr.CNICode() != cnicode.TryAgainLater {
				t.Errorf("%v: transient %v, CNI code %d; want transient, code %d", err, apiErr.Transient, apiErr.CNICode(), cnicode.TryAgainLater)
			}
		})
	}
}

// TestAPIErrorClassification: which failures are transient (CNI code 11).
func TestAPIErrorClassification(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"forbidden", apierrors.NewForbidden(gr, "p", errors.New("no")), false},
		{"unauthorized", apierrors.NewUnauthorized("no"), false},
		{"invalid", apierrors.NewBadRequest("bad"), false},
		{"conflict", apierrors.NewConflict(gr, "p", errors.New("uid")), false},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 1), true},
		{"internal error", apierrors.NewInternalError(errors.New("boom")), true},
		{"service unavailable", apierrors.NewServiceUnavailable("later"), true},
		{"server timeout", apierrors.NewServerTimeout(gr, "get", 1), true},
		{"gateway timeout", apierrors.NewTimeoutError("slow", 1), true},
		{"connection refused", &url.Error{Op: "Get", URL: "https://x", Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}, true},
		{"connection reset", &url.Error{Op: "Get", URL: "https://x", Err: &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}, true},
		{"EOF", &url.Error{Op: "Get", URL: "https://x", Err: io.EOF}, true},
		{"deadline", &url.Error{Op: "Get", URL: "https://x", Err: context.DeadlineExceeded}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := apiError("reading pod", tt.err)
			var apiErr *podnet.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("%T, want *podnet.APIError", err)
			}
			if apiErr.Transient != tt.want {
				t.Errorf("transient %v, want %v", apiErr.Transient, tt.want)
			}
			if !errors.Is(err, tt.err) {
				t.Error("the cause is not reachable with errors.Is")
			}
			if !strings.HasPrefix(err.Error(), "kubernetes API: reading pod: ") {
				t.Errorf("error %q does not name the operation", err)
			}
		})
	}
}

// TestUIDRefused: only a 422 with a cause on metadata.uid is a recreated pod;
// other refusals stay API errors.
func TestUIDRefused(t *testing.T) {
	gk := schema.GroupKind{Kind: "Pod"}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"uid cause", apierrors.NewInvalid(gk, "web-0", field.ErrorList{field.Invalid(field.NewPath("metadata", "uid"), "x", "field is immutable")}), true},
		{"other field", apierrors.NewInvalid(gk, "web-0", field.ErrorList{field.Invalid(field.NewPath("metadata", "annotations"), "x", "too long")}), false},
		{"conflict", apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "web-0", errors.New("the object has been modified")), false},
		{"not found", apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "web-0"), false},
		{"plain", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := uidRefused(tt.err); got != tt.want {
				t.Errorf("uidRefused(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
