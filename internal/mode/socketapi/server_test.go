package socketapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

// blocking is a dispatcher whose requests wait until released.
type blocking struct {
	started chan struct{}
	release chan struct{}
}

func (b *blocking) CNI(ctx context.Context, _ *Request) (json.RawMessage, error) {
	b.started <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return json.RawMessage(`{"cniVersion":"1.0.0"}`), nil
}

func (b *blocking) Delegate(ctx context.Context, r *Request) (json.RawMessage, error) {
	return nil, types.NewError(77, "delegate refused", "")
}

func start(t *testing.T, d Dispatcher, o Options) (*Server, Client) {
	t.Helper()
	o.SocketDir = filepath.Join(t.TempDir(), "run")
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 4
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = 1 << 20
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 5 * time.Second
	}
	s := New(d, o)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s, Client{Socket: SocketPath(o.SocketDir), ConnectTimeout: time.Second, RequestTimeout: 5 * time.Second}
}

// TestSocketIsRootOnly: the folder is 0700 and the socket 0600.
func TestSocketIsRootOnly(t *testing.T) {
	_, c := start(t, &blocking{}, Options{})
	for path, want := range map[string]os.FileMode{filepath.Dir(c.Socket): 0o700, c.Socket: 0o600} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v", path, got, want)
		}
	}
}

// TestInFlightBound: past MaxInFlight a request is answered at once with CNI code
// 11 rather than queued (memory stays bounded under a burst).
func TestInFlightBound(t *testing.T) {
	b := &blocking{started: make(chan struct{}, 8), release: make(chan struct{})}
	_, c := start(t, b, Options{MaxInFlight: 2})
	req := &Request{Env: map[string]string{"CNI_COMMAND": "ADD"}, Config: []byte("{}")}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := c.Do(context.Background(), PathCNI, req); err != nil {
				t.Errorf("request within the bound: %v", err)
			}
		})
	}
	<-b.started
	<-b.started
	_, err := c.Do(context.Background(), PathCNI, req)
	var ce *types.Error
	if !asCNI(err, &ce) || ce.Code != cnicode.TryAgainLater {
		t.Errorf("request over the bound: %v, want CNI code 11", err)
	}
	close(b.release)
	wg.Wait()
}

// TestBadRequests: a body over the size bound, a wrong method, and a dispatcher's
// CNI error, which keeps its code.
func TestBadRequests(t *testing.T) {
	_, c := start(t, &blocking{}, Options{MaxRequestBytes: 1024})
	big := &Request{Env: map[string]string{"CNI_COMMAND": "ADD"}, Config: bytes.Repeat([]byte("x"), 4096)}
	_, err := c.Do(context.Background(), PathCNI, big)
	var ce *types.Error
	if !asCNI(err, &ce) || ce.Code != cnicode.DecodingFailure {
		t.Errorf("oversized body: %v, want code %d", err, cnicode.DecodingFailure)
	}
	code, err := c.Get(context.Background(), PathCNI)
	if err != nil || code != http.StatusMethodNotAllowed {
		t.Errorf("GET /cni: %d %v, want 405", code, err)
	}
	_, err = c.Do(context.Background(), PathDelegate, &Request{Env: map[string]string{"CNI_COMMAND": "ADD"}})
	if !asCNI(err, &ce) || ce.Code != 77 || !strings.Contains(ce.Msg, "delegate refused") {
		t.Errorf("dispatcher error: %v, want its code 77", err)
	}
}

// TestReadyz: 503 until ready, 200 when ready, 503 again once shutdown begins.
func TestReadyz(t *testing.T) {
	s, c := start(t, &blocking{}, Options{})
	if code, _ := c.Get(context.Background(), PathReadyz); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before ready: %d", code)
	}
	s.SetReady(true)
	if code, _ := c.Get(context.Background(), PathReadyz); code != http.StatusOK {
		t.Errorf("/readyz when ready: %d", code)
	}
	if code, _ := c.Get(context.Background(), PathHealthz); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	s.stopping.Store(true)
	if code, _ := c.Get(context.Background(), PathReadyz); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during shutdown: %d", code)
	}
}

func asCNI(err error, target **types.Error) bool {
	e, ok := err.(*types.Error)
	if ok {
		*target = e
	}
	return ok
}
