package socketapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/plugin"
)

// recorder is a dispatcher that keeps every request it is given and answers
// with a scripted result or error.
type recorder struct {
	mu     sync.Mutex
	got    map[string][]Request // by endpoint
	result json.RawMessage
	err    error
}

func (r *recorder) record(endpoint string, req *Request) (json.RawMessage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string][]Request{}
	}
	r.got[endpoint] = append(r.got[endpoint], *req)
	return r.result, r.err
}

func (r *recorder) CNI(_ context.Context, req *Request) (json.RawMessage, error) {
	return r.record(PathCNI, req)
}

func (r *recorder) Delegate(_ context.Context, req *Request) (json.RawMessage, error) {
	return r.record(PathDelegate, req)
}

func (r *recorder) requests(endpoint string) []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.got[endpoint]...)
}

// TestRoundTrip: what the client sends is what the dispatcher gets, with the
// protocol version filled in, and the dispatcher's result comes back unchanged.
func TestRoundTrip(t *testing.T) {
	result := json.RawMessage(`{"cniVersion":"1.0.0","interfaces":[{"name":"net1"}]}`)
	rec := &recorder{result: result}
	_, c := start(t, rec, Options{})
	args := map[string]any{"foo": "bar", "n": 2.0}
	tests := []struct {
		name     string
		endpoint string
		req      Request
	}{
		{"cni ADD", PathCNI, Request{
			Env:    map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/x", "CNI_IFNAME": "eth0"},
			Config: []byte("{\"cniVersion\":\"1.0.0\",\n \"name\":\"multus\"}"),
		}},
		{"cni without config", PathCNI, Request{Env: map[string]string{"CNI_COMMAND": "STATUS"}}},
		{"delegate with attributes", PathDelegate, Request{
			Env:    map[string]string{"CNI_COMMAND": "ADD", "CNI_IFNAME": "net1"},
			Config: []byte(`{"type":"macvlan"}`),
			InterfaceAttributes: &InterfaceAttributes{
				IPRequest: []string{"10.0.0.5/24"}, MacRequest: "02:00:00:00:00:01", CNIArgs: &args,
			},
		}},
		{"explicit version", PathCNI, Request{ProtocolVersion: 1, Env: map[string]string{"CNI_COMMAND": "DEL"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rec.requests(tt.endpoint))
			sent := tt.req
			resp, err := c.Do(context.Background(), tt.endpoint, &sent)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.req, sent); diff != "" {
				t.Errorf("Do changed the caller's request (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(string(result), string(resp.Result)); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			got := rec.requests(tt.endpoint)
			if len(got) != before+1 {
				t.Fatalf("dispatcher got %d requests on %s, want %d", len(got), tt.endpoint, before+1)
			}
			want := tt.req
			want.ProtocolVersion = ProtocolVersion
			if diff := cmp.Diff(want, got[before]); diff != "" {
				t.Errorf("request the dispatcher got (-want +got):\n%s", diff)
			}
		})
	}
}

// postRaw posts body to the socket as it is, the way upstream's shim and
// third-party callers do, and returns the status and the answer.
func postRaw(t *testing.T, socket, path, body string) (int, []byte) {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := hc.Post("http://multus"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b.Bytes()
}

// TestProtocolVersion: a body without a version is upstream's and accepted;
// a version the server does not know is refused with 400 and a CNI error that
// names the field, the version sent and the versions supported; the refused
// request never reaches the dispatcher.
func TestProtocolVersion(t *testing.T) {
	rec := &recorder{result: json.RawMessage(`{"cniVersion":"1.0.0"}`)}
	_, c := start(t, rec, Options{})
	// Upstream's shim: env and config (base64), no version.
	upstream := `{"env":{"CNI_COMMAND":"ADD","CNI_IFNAME":"eth0"},"config":"eyJuYW1lIjoibiJ9"}`
	// Upstream's dynamic networks controller on /delegate.
	hotplug := `{"env":{"CNI_COMMAND":"ADD"},"config":"e30=","interfaceAttributes":{"ips":["10.1.1.1/24"],"mac":"02:00:00:00:00:02","cni-args":{"a":"b"}}}`
	tests := []struct {
		name       string
		path       string
		body       string
		wantStatus int
		wantCode   uint     // CNI code of a refusal
		wantInMsg  []string // what a refusal's message names
		wantReq    *Request // what the dispatcher gets when accepted
	}{
		{
			name: "upstream shim without version", path: PathCNI, body: upstream, wantStatus: http.StatusOK,
			wantReq: &Request{Env: map[string]string{"CNI_COMMAND": "ADD", "CNI_IFNAME": "eth0"}, Config: []byte(`{"name":"n"}`)},
		},
		{
			name: "upstream delegate without version", path: PathDelegate, body: hotplug, wantStatus: http.StatusOK,
			wantReq: &Request{Env: map[string]string{"CNI_COMMAND": "ADD"}, Config: []byte(`{}`), InterfaceAttributes: &InterfaceAttributes{
				IPRequest: []string{"10.1.1.1/24"}, MacRequest: "02:00:00:00:00:02", CNIArgs: &map[string]any{"a": "b"},
			}},
		},
		{
			name: "version 1", path: PathCNI, body: `{"protocolVersion":1,"env":{"CNI_COMMAND":"DEL"}}`, wantStatus: http.StatusOK,
			wantReq: &Request{ProtocolVersion: 1, Env: map[string]string{"CNI_COMMAND": "DEL"}},
		},
		{
			name: "version 2", path: PathCNI, body: `{"protocolVersion":2,"env":{"CNI_COMMAND":"ADD"}}`,
			wantStatus: http.StatusBadRequest, wantCode: cnicode.IncompatibleVersion,
			wantInMsg: []string{`"protocolVersion"`, "is 2", "supports 1"},
		},
		{
			name: "negative version", path: PathDelegate, body: `{"protocolVersion":-1,"env":{}}`,
			wantStatus: http.StatusBadRequest, wantCode: cnicode.IncompatibleVersion,
			wantInMsg: []string{`"protocolVersion"`, "is -1", "supports 1"},
		},
		{
			name: "version not a number", path: PathCNI, body: `{"protocolVersion":"1","env":{}}`,
			wantStatus: http.StatusBadRequest, wantCode: cnicode.DecodingFailure,
		},
		{
			name: "not JSON", path: PathCNI, body: `{"env":`,
			wantStatus: http.StatusBadRequest, wantCode: cnicode.DecodingFailure,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rec.requests(tt.path))
			status, body := postRaw(t, c.Socket, tt.path, tt.body)
			if status != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", status, body, tt.wantStatus)
			}
			got := rec.requests(tt.path)
			if tt.wantReq == nil {
				if len(got) != before {
					t.Errorf("a refused request reached the dispatcher: %+v", got[len(got)-1])
				}
				var ce types.Error
				if err := json.Unmarshal(body, &ce); err != nil {
					t.Fatalf("answer is not a CNI error object: %v: %s", err, body)
				}
				if ce.Code != tt.wantCode {
					t.Errorf("code %d, want %d (%s)", ce.Code, tt.wantCode, ce.Msg)
				}
				for _, s := range tt.wantInMsg {
					if !strings.Contains(ce.Msg, s) {
						t.Errorf("message %q does not name %q", ce.Msg, s)
					}
				}
				return
			}
			if len(got) != before+1 {
				t.Fatalf("dispatcher got %d requests, want %d", len(got)-before, 1)
			}
			if diff := cmp.Diff(*tt.wantReq, got[before]); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if v := got[before].Version(); v != 1 {
				t.Errorf("Version() = %d, want 1", v)
			}
		})
	}
}

// TestClientVersionRefused: our client sending a version the daemon does not
// know gets the refusal as a CNI error with code 1.
func TestClientVersionRefused(t *testing.T) {
	rec := &recorder{}
	_, c := start(t, rec, Options{})
	_, err := c.Do(context.Background(), PathCNI, &Request{ProtocolVersion: 99, Env: map[string]string{"CNI_COMMAND": "ADD"}})
	var ce *types.Error
	if !errors.As(err, &ce) || ce.Code != cnicode.IncompatibleVersion || !strings.Contains(ce.Msg, "99") {
		t.Errorf("got %v, want CNI code %d naming version 99", err, cnicode.IncompatibleVersion)
	}
}

// TestUnreachable: every way of not reaching the daemon is an *UnreachableError
// that the boundary reports with CNI code 11, for Do and Get alike.
func TestUnreachable(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close() // the file stays; nothing listens: a killed daemon
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	silent := filepath.Join(dir, "silent.sock")
	sl, err := net.Listen("unix", silent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sl.Close() })
	go acceptAndHold(t, sl) // accepts, never answers: a stuck daemon

	tests := []struct{ name, socket string }{
		{"no socket", filepath.Join(dir, "missing", "multus.sock")},
		{"stale socket", stale},
		{"not a socket", regular},
		{"no answer in time", silent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Client{Socket: tt.socket, ConnectTimeout: time.Second, RequestTimeout: 300 * time.Millisecond}
			_, doErr := c.Do(context.Background(), PathCNI, &Request{Env: map[string]string{"CNI_COMMAND": "DEL"}})
			_, getErr := c.Get(context.Background(), PathReadyz)
			for call, err := range map[string]error{"Do": doErr, "Get": getErr} {
				var ue *UnreachableError
				if !errors.As(err, &ue) {
					t.Fatalf("%s: %v (%T), want *UnreachableError", call, err, err)
				}
				if ue.Socket != tt.socket {
					t.Errorf("%s: socket %q, want %q", call, ue.Socket, tt.socket)
				}
				if code := plugin.AsCNIError(err).Code; code != cnicode.TryAgainLater {
					t.Errorf("%s: CNI code %d, want %d", call, code, cnicode.TryAgainLater)
				}
			}
		})
	}
}

// acceptAndHold accepts connections and keeps them open without answering,
// until the listener is closed.
func acceptAndHold(t *testing.T, l net.Listener) {
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		conns = append(conns, c)
	}
}

// serveRaw serves h on a unix socket in a temp folder: a daemon that answers
// whatever the test wants.
func serveRaw(t *testing.T, h http.HandlerFunc) Client {
	t.Helper()
	socket := filepath.Join(t.TempDir(), SocketName)
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return Client{Socket: socket, ConnectTimeout: time.Second, RequestTimeout: 10 * time.Second}
}

// TestResponseBound: an answer of exactly MaxResponseBytes is read; one byte
// more is refused with ErrResponseTooLarge, whatever its status, instead of
// being cut and misread.
func TestResponseBound(t *testing.T) {
	// body returns a JSON answer of exactly n bytes.
	body := func(n int) []byte {
		head, tail := `{"Result":"`, `"}`
		return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
	}
	tests := []struct {
		name    string
		status  int
		size    int
		wantErr error
	}{
		{"at the bound", http.StatusOK, MaxResponseBytes, nil},
		{"over the bound", http.StatusOK, MaxResponseBytes + 1, ErrResponseTooLarge},
		{"error over the bound", http.StatusInternalServerError, MaxResponseBytes + 1, ErrResponseTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := serveRaw(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = w.Write(body(tt.size))
			})
			resp, err := c.Do(context.Background(), PathCNI, &Request{})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err == nil && len(resp.Result) != tt.size-len(`{"Result":}`) {
				t.Errorf("result of %d bytes, want %d", len(resp.Result), tt.size-len(`{"Result":}`))
			}
		})
	}
}

// TestDaemonErrors: a CNI error object the daemon answers comes back as a
// *types.Error with its code and details; the dispatcher's coded errors keep
// their code; an answer that is not a CNI error is internal (999) and quotes
// only the start of what was said.
func TestDaemonErrors(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode uint
		wantMsg  string
	}{
		{"CNI error", &types.Error{Code: 101, Msg: "network x not found", Details: "in namespace y"}, 101, "network x not found"},
		{"wrapped CNI error", fmt.Errorf("attaching net1: %w", types.NewError(7, "bad conf", "")), 7, "attaching net1: bad conf"},
		{"coded error", fmt.Errorf("reaching the API: %w", &UnreachableError{Socket: "s", Err: errors.New("x")}), cnicode.TryAgainLater, "reaching the API"},
		{"plain error", errors.New("boom"), cnicode.Internal, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := start(t, &recorder{err: tt.err}, Options{})
			_, err := c.Do(context.Background(), PathCNI, &Request{Env: map[string]string{"CNI_COMMAND": "ADD"}})
			var ce *types.Error
			if !errors.As(err, &ce) {
				t.Fatalf("%v (%T), want *types.Error", err, err)
			}
			if ce.Code != tt.wantCode || !strings.Contains(ce.Msg, tt.wantMsg) {
				t.Errorf("code %d msg %q, want code %d with %q", ce.Code, ce.Msg, tt.wantCode, tt.wantMsg)
			}
			var want *types.Error
			if errors.As(tt.err, &want) && want.Details != "" && ce.Details != want.Details {
				t.Errorf("details %q, want %q", ce.Details, want.Details)
			}
		})
	}

	t.Run("not a CNI error", func(t *testing.T) {
		c := serveRaw(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("proxy says no " + strings.Repeat("z", 10000)))
		})
		_, err := c.Do(context.Background(), PathCNI, &Request{})
		var ce *types.Error
		if !errors.As(err, &ce) || ce.Code != cnicode.Internal {
			t.Fatalf("%v, want CNI code %d", err, cnicode.Internal)
		}
		if !strings.Contains(ce.Msg, "502") || !strings.Contains(ce.Msg, "proxy says no") {
			t.Errorf("message %q does not say what was answered", ce.Msg)
		}
		if len(ce.Msg) > maxQuotedBytes+200 {
			t.Errorf("message of %d bytes quotes the whole answer", len(ce.Msg))
		}
	})
}
