package socketapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"

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

// TestInFlightBound: past MaxInFlight a request waits for a slot, its body
// unread, and runs when one frees; one that waits longer than QueueWait, or
// any with QueueWait zero, is answered with CNI code 11.
func TestInFlightBound(t *testing.T) {
	req := &Request{Env: map[string]string{"CNI_COMMAND": "ADD"}, Config: []byte("{}")}
	fill := func(t *testing.T, c Client, b *blocking, n int) *sync.WaitGroup {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if _, err := c.Do(context.Background(), PathCNI, req); err != nil {
					t.Errorf("request within the bound: %v", err)
				}
			})
		}
		for range n {
			<-b.started
		}
		return &wg
	}
	t.Run("waits for a slot", func(t *testing.T) {
		b := &blocking{started: make(chan struct{}, 8), release: make(chan struct{})}
		_, c := start(t, b, Options{MaxInFlight: 2, QueueWait: time.Hour})
		wg := fill(t, c, b, 2)
		done := make(chan error, 1)
		go func() { _, err := c.Do(context.Background(), PathCNI, req); done <- err }()
		select {
		case err := <-done:
			t.Fatalf("the request over the bound ended (%v) while every slot was taken", err)
		case <-b.started:
			t.Fatal("the request over the bound ran while every slot was taken")
		case <-time.After(200 * time.Millisecond): // a negative check: it must still be waiting
		}
		close(b.release)
		if err := <-done; err != nil {
			t.Errorf("the queued request: %v", err)
		}
		wg.Wait()
	})
	for name, wait := range map[string]time.Duration{"refused after QueueWait": 50 * time.Millisecond, "refused at once": 0} {
		t.Run(name, func(t *testing.T) {
			b := &blocking{started: make(chan struct{}, 8), release: make(chan struct{})}
			_, c := start(t, b, Options{MaxInFlight: 2, QueueWait: wait})
			wg := fill(t, c, b, 2)
			_, err := c.Do(context.Background(), PathCNI, req)
			var ce *types.Error
			if !asCNI(err, &ce) || ce.Code != cnicode.TryAgainLater {
				t.Errorf("request over the bound: %v, want CNI code 11", err)
			}
			close(b.release)
			wg.Wait()
		})
	}
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

// TestListen: the socket folder is made (nested), or an existing one narrowed,
// to 0700; a stale socket left by a killed daemon is replaced; anything else at
// the socket's path is refused and left as it was.
func TestListen(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string) // dir is the socket folder
		wantErr string                         // "" when Listen must succeed
	}{
		{"new nested folder", func(*testing.T, string) {}, ""},
		{"existing open folder", func(t *testing.T, dir string) { mkdir(t, dir, 0o755) }, ""},
		{"stale socket", func(t *testing.T, dir string) {
			mkdir(t, dir, 0o700)
			l, err := net.ListenUnix("unix", &net.UnixAddr{Name: SocketPath(dir), Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			l.SetUnlinkOnClose(false)
			l.Close()
		}, ""},
		{"regular file", func(t *testing.T, dir string) {
			mkdir(t, dir, 0o700)
			if err := os.WriteFile(SocketPath(dir), []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a socket"},
		{"folder", func(t *testing.T, dir string) { mkdir(t, SocketPath(dir), 0o700) }, "not a socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run", "multus")
			tt.prepare(t, dir)
			before, _ := os.Lstat(SocketPath(dir))
			s := New(&recorder{}, Options{SocketDir: dir, MaxInFlight: 1, MaxRequestBytes: 1 << 10, RequestTimeout: time.Second})
			err := s.Listen()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Listen: %v, want an error saying %q", err, tt.wantErr)
				}
				after, lerr := os.Lstat(SocketPath(dir))
				if lerr != nil || after.Mode() != before.Mode() || after.Size() != before.Size() {
					t.Errorf("Listen changed what it refused: %v %v", after, lerr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = s.Serve() }()
			t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
			for path, want := range map[string]os.FileMode{dir: os.ModeDir | 0o700, SocketPath(dir): os.ModeSocket | 0o600} {
				info, err := os.Lstat(path)
				if err != nil {
					t.Fatal(err)
				}
				if got := info.Mode() & (os.ModeType | os.ModePerm); got != want {
					t.Errorf("%s has mode %v, want %v", path, got, want)
				}
			}
			c := Client{Socket: SocketPath(dir), ConnectTimeout: time.Second, RequestTimeout: 5 * time.Second}
			if code, err := c.Get(context.Background(), PathHealthz); err != nil || code != http.StatusOK {
				t.Errorf("/healthz on the new socket: %d %v", code, err)
			}
		})
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

// observation is one ObserveRequest call without its duration.
type observation struct{ Endpoint, Command, Result string }

// observer records what the server reports.
type observer struct {
	mu       sync.Mutex
	seen     []observation
	inFlight float64
	peak     float64
}

func (o *observer) ObserveRequest(endpoint, command, result string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, observation{endpoint, command, result})
}

func (o *observer) AddInFlight(delta float64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inFlight += delta
	o.peak = max(o.peak, o.inFlight)
}

// TestObserver: each request is reported once with its endpoint, a command
// from the known set (anything else is "other", so a caller cannot make new
// metric series), and its result; the in-flight count goes up and back to 0.
func TestObserver(t *testing.T) {
	obs := &observer{}
	rec := &recorder{result: json.RawMessage(`{}`)}
	_, c := start(t, rec, Options{Observer: obs})
	failing := &recorder{err: errors.New("boom")}
	_, cf := start(t, failing, Options{Observer: obs})
	tests := []struct {
		name string
		call func() error
		want observation
	}{
		{"success", func() error {
			_, err := c.Do(context.Background(), PathCNI, &Request{Env: map[string]string{"CNI_COMMAND": "ADD"}})
			return err
		}, observation{PathCNI, "ADD", "success"}},
		{"delegate", func() error {
			_, err := c.Do(context.Background(), PathDelegate, &Request{Env: map[string]string{"CNI_COMMAND": "DEL"}})
			return err
		}, observation{PathDelegate, "DEL", "success"}},
		{"unknown command", func() error {
			_, err := c.Do(context.Background(), PathCNI, &Request{Env: map[string]string{"CNI_COMMAND": "SOMETHING-NEW"}})
			return err
		}, observation{PathCNI, "other", "success"}},
		{"dispatcher error", func() error {
			_, err := cf.Do(context.Background(), PathCNI, &Request{Env: map[string]string{"CNI_COMMAND": "CHECK"}})
			if err == nil {
				return errors.New("no error")
			}
			return nil
		}, observation{PathCNI, "CHECK", "error"}},
		{"refused version", func() error {
			_, err := c.Do(context.Background(), PathCNI, &Request{ProtocolVersion: 7, Env: map[string]string{"CNI_COMMAND": "ADD"}})
			if err == nil {
				return errors.New("no error")
			}
			return nil
		}, observation{PathCNI, "other", "error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs.mu.Lock()
			before := len(obs.seen)
			obs.mu.Unlock()
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if diff := cmp.Diff([]observation{tt.want}, obs.seen[before:]); diff != "" {
				t.Errorf("observations (-want +got):\n%s", diff)
			}
			if obs.inFlight != 0 {
				t.Errorf("in flight %v after the request, want 0", obs.inFlight)
			}
		})
	}
	if obs.peak != 1 {
		t.Errorf("in-flight peak %v, want 1", obs.peak)
	}
}

// watchedBody is a request body that records whether anything read it.
type watchedBody struct {
	r    io.Reader
	read atomic.Bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.r.Read(p)
}

func (b *watchedBody) Close() error { return nil }

// TestInFlightBoundBeforeBody: with maxInFlight 1 and one request in flight, a
// second request is answered with CNI code 11 at once and its body is never
// read, so a burst past the bound costs no memory for bodies (Multus #1346).
func TestInFlightBoundBeforeBody(t *testing.T) {
	b := &blocking{started: make(chan struct{}, 1), release: make(chan struct{})}
	s, c := start(t, b, Options{MaxInFlight: 1})
	done := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), PathCNI, &Request{Env: map[string]string{"CNI_COMMAND": "ADD"}, Config: []byte("{}")})
		done <- err
	}()
	<-b.started
	for _, path := range []string{PathCNI, PathDelegate} {
		body := &watchedBody{r: strings.NewReader(`{"env":{"CNI_COMMAND":"ADD"},"config":"e30="}`)}
		req := httptest.NewRequest(http.MethodPost, path, body)
		rec := httptest.NewRecorder()
		s.http.Handler.ServeHTTP(rec, req)
		if body.read.Load() {
			t.Errorf("%s: the server read the body of a request over the in-flight bound", path)
		}
		var ce types.Error
		if err := json.Unmarshal(rec.Body.Bytes(), &ce); err != nil || ce.Code != cnicode.TryAgainLater || rec.Code != http.StatusTooManyRequests {
			t.Errorf("%s: status %d, body %s; want 429 and CNI code 11", path, rec.Code, rec.Body)
		}
	}
	close(b.release)
	if err := <-done; err != nil {
		t.Errorf("the request in flight: %v", err)
	}
}

// TestListenRefusesLiveSocket: a second server listening on the folder of a
// live one refuses to start, naming the socket, and leaves the first serving;
// only a socket nothing answers on is replaced (TestListen).
func TestListenRefusesLiveSocket(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	opts := Options{SocketDir: dir, MaxInFlight: 1, MaxRequestBytes: 1 << 10, RequestTimeout: time.Second}
	first := New(&recorder{}, opts)
	if err := first.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = first.Serve() }()
	t.Cleanup(func() { _ = first.Shutdown(context.Background()) })
	first.SetReady(true)

	second := New(&recorder{}, opts)
	err := second.Listen()
	if second.listener != nil {
		t.Cleanup(func() { second.listener.Close() })
	}
	if err == nil || !strings.Contains(err.Error(), SocketPath(dir)) || !strings.Contains(err.Error(), "another") {
		t.Errorf("second Listen: %v, want an error naming %s and saying another daemon serves it", err, SocketPath(dir))
	}
	c := Client{Socket: SocketPath(dir), ConnectTimeout: time.Second, RequestTimeout: 5 * time.Second}
	if code, err := c.Get(context.Background(), PathReadyz); err != nil || code != http.StatusOK {
		t.Errorf("the first server after the second's start: /readyz %d %v, want 200 (still serving its socket)", code, err)
	}
}

// startWithBodyTimeout serves like start, with the body deadline shortened.
func startWithBodyTimeout(t *testing.T, d Dispatcher, o Options, body time.Duration) Client {
	t.Helper()
	o.SocketDir = filepath.Join(t.TempDir(), "run")
	o.MaxRequestBytes, o.RequestTimeout = 1<<20, 10*time.Second
	s := New(d, o)
	s.bodyTimeout = body
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return Client{Socket: SocketPath(o.SocketDir), ConnectTimeout: time.Second, RequestTimeout: 10 * time.Second}
}

// outlasting is a dispatcher whose requests take a while, failing if their
// context ends first.
type outlasting struct{ d time.Duration }

func (o outlasting) CNI(ctx context.Context, _ *Request) (json.RawMessage, error) {
	select {
	case <-time.After(o.d):
		return json.RawMessage(`{"cniVersion":"1.0.0"}`), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (o outlasting) Delegate(ctx context.Context, r *Request) (json.RawMessage, error) {
	return o.CNI(ctx, r)
}

// TestBodyDeadline: the deadline on reading a body holds for the body only. A
// request that runs past it is not cut short (net/http keeps reading the
// connection, and a deadline passing there would cancel the request), and a
// client that stalls in its body loses its slot at the deadline, with CNI
// code 6, so the next request is served.
func TestBodyDeadline(t *testing.T) {
	const deadline = 100 * time.Millisecond
	t.Run("a long request outlives the body deadline", func(t *testing.T) {
		c := startWithBodyTimeout(t, outlasting{d: 10 * deadline}, Options{MaxInFlight: 1}, deadline)
		if _, err := c.Do(context.Background(), PathCNI, &Request{Env: map[string]string{"CNI_COMMAND": "ADD"}, Config: []byte("{}")}); err != nil {
			t.Errorf("a request running past the body deadline: %v", err)
		}
	})
	t.Run("a stalled body loses the slot", func(t *testing.T) {
		c := startWithBodyTimeout(t, outlasting{}, Options{MaxInFlight: 1}, deadline)
		conn, err := net.Dial("unix", c.Socket)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "POST /cni HTTP/1.1\r\nHost: multus\r\nContent-Length: 100\r\n\r\n{\"env\":"); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer to the stalled request: %v", err)
		}
		var ce types.Error
		_ = json.NewDecoder(resp.Body).Decode(&ce)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || ce.Code != cnicode.DecodingFailure {
			t.Errorf("stalled request: %s, code %d; want 400 and CNI code %d", resp.Status, ce.Code, cnicode.DecodingFailure)
		}
		if _, err := c.Do(context.Background(), PathCNI, &Request{Env: map[string]string{"CNI_COMMAND": "ADD"}, Config: []byte("{}")}); err != nil {
			t.Errorf("the request after the stalled one: %v", err)
		}
	})
}
