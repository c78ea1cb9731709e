package socketapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"golang.org/x/net/netutil"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/plugin"
	"github.com/polynet-cni/polynet/internal/request"
)

// Dispatcher runs requests; it returns the result to send back (ADD) or nil.
type Dispatcher interface {
	CNI(ctx context.Context, req *Request) (json.RawMessage, error)
	Delegate(ctx context.Context, req *Request) (json.RawMessage, error)
}

// Options bound the server. MaxInFlight, MaxRequestBytes and RequestTimeout
// must be positive (the daemon's configuration checks them): a zero bound
// refuses every request. ConnectionLimit zero means no limit.
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
	// ObserveRequest records one finished request: endpoint, CNI command (one of
	// ADD, DEL, CHECK, STATUS, GC, or "other", which includes bodies that could
	// not be read), result (success, error, rejected) and its duration.
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
	if err := removeStaleSocket(path); err != nil {
		return err
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

// removeStaleSocket removes the socket a killed daemon left at path. Anything
// else there, a file or a folder, is refused rather than deleted: the path is
// configuration, and a mistake in it must not cost someone's file.
func removeStaleSocket(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("the old socket: %w", err)
	}
	if info.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s is a %v, not a socket; remove it or choose another socket folder", path, info.Mode().Type())
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing the old socket: %w", err)
	}
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
		req, cerr := decodeRequest(http.MaxBytesReader(w, r.Body, s.opts.MaxRequestBytes))
		if cerr != nil {
			s.observe(endpoint, "", "error", start)
			writeError(w, http.StatusBadRequest, cerr)
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
		result, err := run(ctx, req)
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

// decodeRequest reads a request body and refuses one the server cannot read:
// not JSON, over the size bound (body is a MaxBytesReader), or of a protocol
// version it does not know. Fields it does not know are ignored, as upstream's
// daemon ignores them.
func decodeRequest(body io.Reader) (*Request, *types.Error) {
	var req Request
	if err := json.NewDecoder(body).Decode(&req); err != nil {
		return nil, types.NewError(cnicode.DecodingFailure, "request body", err.Error())
	}
	if why := req.checkVersion(); why != "" {
		return nil, types.NewError(cnicode.IncompatibleVersion, why, "")
	}
	return &req, nil
}

func (s *Server) observe(endpoint, command, result string, start time.Time) {
	if s.opts.Observer == nil {
		return
	}
	// The metrics name the CNI commands; any other value of CNI_COMMAND is
	// counted as "other", so that a request cannot make a new series.
	if !slices.Contains(request.Commands, command) {
		command = "other"
	}
	s.opts.Observer.ObserveRequest(endpoint, command, result, time.Since(start))
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
