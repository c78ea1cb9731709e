// Package server is the daemon's end of the socket protocol: an HTTP server on
// <socketDir>/multus.sock (folder 0700, socket 0600: root only) with the CNI
// endpoint, upstream's /delegate endpoint for hot-plug controllers, /healthz and
// /readyz. It bounds what a burst can cost: each body's size, each request's
// time, and the requests in flight, past which the answer is CNI code 11 ("try
// again later") rather than more memory (Multus #1346).
package socketapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"golang.org/x/net/netutil"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/plugin"
)

// Dispatcher runs requests; it returns the result to send back (ADD) or nil.
type Dispatcher interface {
	CNI(ctx context.Context, req *Request) (json.RawMessage, error)
	Delegate(ctx context.Context, req *Request) (json.RawMessage, error)
}

// Options bound the server.
type Options struct {
	SocketDir       string
	ConnectionLimit int
	MaxInFlight     int
	MaxRequestBytes int64
	RequestTimeout  time.Duration
	// Observer is told of every request; nil observes nothing. The daemon gives
	// its Prometheus metrics, which this package does not link: the shim, which
	// links the client, must not pay for them.
	Observer Observer
}

// Observer records what the server does.
type Observer interface {
	// ObserveRequest records one finished request: endpoint, CNI command, result
	// (success, error, rejected) and its duration.
	ObserveRequest(endpoint, command, result string, d time.Duration)
	// AddInFlight moves the count of requests being processed.
	AddInFlight(delta float64)
}

// Server serves the socket.
type Server struct {
	opts     Options
	dispatch Dispatcher
	slots    chan struct{}
	ready    atomic.Bool
	stopping atomic.Bool
	http     *http.Server
	listener net.Listener
}

// New builds a server; Listen and Serve start it.
func New(d Dispatcher, o Options) *Server {
	s := &Server{opts: o, dispatch: d, slots: make(chan struct{}, o.MaxInFlight)}
	mux := http.NewServeMux()
	mux.HandleFunc(PathCNI, s.handle(PathCNI, d.CNI))
	mux.HandleFunc(PathDelegate, s.handle(PathDelegate, d.Delegate))
	mux.HandleFunc(PathHealthz, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc(PathReadyz, s.readyz)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.http.SetKeepAlivesEnabled(false)
	return s
}

// Listen prepares the socket: the folder is made (0700), a stale socket left by
// a killed daemon is removed, and the new one is only for root (0600).
func (s *Server) Listen() error {
	dir := s.opts.SocketDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("socket folder: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("socket folder: %w", err)
	}
	path := SocketPath(dir)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the old socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("socket mode: %w", err)
	}
	if s.opts.ConnectionLimit > 0 {
		l = netutil.LimitListener(l, s.opts.ConnectionLimit)
	}
	s.listener = l
	return nil
}

// Serve serves until Shutdown.
func (s *Server) Serve() error {
	err := s.http.Serve(s.listener)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// SetReady makes /readyz answer 200 (once caches are in sync).
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Shutdown fails /readyz at once, stops accepting, and waits for the requests in
// flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	return s.http.Shutdown(ctx)
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.ready.Load() || s.stopping.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handle(endpoint string, run func(context.Context, *Request) (json.RawMessage, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, types.NewError(cnicode.InvalidEnvironment, "use POST", ""))
			return
		}
		var req Request
		body := http.MaxBytesReader(w, r.Body, s.opts.MaxRequestBytes)
		if err := json.NewDecoder(body).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, types.NewError(cnicode.DecodingFailure, "request body", err.Error()))
			return
		}
		command := req.Env["CNI_COMMAND"]
		select {
		case s.slots <- struct{}{}:
		default:
			s.observe(endpoint, command, "rejected", start)
			writeError(w, http.StatusTooManyRequests, types.NewError(cnicode.TryAgainLater,
				fmt.Sprintf("multus-daemon is at its limit of %d requests in flight; try again later", cap(s.slots)), ""))
			return
		}
		defer func() { <-s.slots }()
		s.gauge(1)
		defer s.gauge(-1)
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
		defer cancel()
		result, err := run(ctx, &req)
		if err != nil {
			s.observe(endpoint, command, "error", start)
			writeError(w, http.StatusInternalServerError, plugin.AsCNIError(err))
			return
		}
		s.observe(endpoint, command, "success", start)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(Response{Result: result})
	}
}

func (s *Server) observe(endpoint, command, result string, start time.Time) {
	if s.opts.Observer != nil {
		s.opts.Observer.ObserveRequest(endpoint, command, result, time.Since(start))
	}
}

func (s *Server) gauge(delta float64) {
	if s.opts.Observer != nil {
		s.opts.Observer.AddInFlight(delta)
	}
}

// writeError sets the headers, then the status, then writes the CNI error.
func writeError(w http.ResponseWriter, status int, e *types.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}
