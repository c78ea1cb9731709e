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
	"syscall"
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
	// QueueWait is how long a request past MaxInFlight waits for a slot, its
	// body unread, before it is refused with CNI code 11; zero refuses it at
	// once. Waiting requests are bounded by ConnectionLimit: past it,
	// connections wait in the kernel's backlog and cost the daemon nothing.
	QueueWait time.Duration
	// Observer is told of every request; nil observes nothing. The daemon gives
	// its Prometheus metrics, which this package does not link: the shim, which
	// links the client, must not pay for them.
	Observer Observer
}

// Observer records what the server does.
type Observer interface {
	// ObserveRequest records one finished request: endpoint, CNI command (one of
	// ADD, DEL, CHECK, STATUS, GC, or "other", which includes bodies that could
	// not be read and requests rejected, whose bodies are never read), result
	// (success, error, rejected) and its duration.
	ObserveRequest(endpoint, command, result string, d time.Duration)
	// AddInFlight moves the count of requests being processed.
	AddInFlight(delta float64)
}

// staleProbeTimeout bounds the connection attempt that tells a live socket
// from a stale one.
const staleProbeTimeout = time.Second

// bodyReadTimeout bounds reading a request's body, as the server's
// ReadHeaderTimeout bounds its headers. A body is at most MaxRequestBytes
// over a local socket: it takes milliseconds.
const bodyReadTimeout = 10 * time.Second

// Server serves the socket.
type Server struct {
	opts     Options
	dispatch Dispatcher
	slots    chan struct{}
	ready    atomic.Bool
	stopping atomic.Bool
	http     *http.Server
	listener net.Listener
	// bodyTimeout is bodyReadTimeout; tests shorten it.
	bodyTimeout time.Duration
}

// New builds a server; Listen and Serve start it.
func New(d Dispatcher, o Options) *Server {
	s := &Server{opts: o, dispatch: d, slots: make(chan struct{}, o.MaxInFlight), bodyTimeout: bodyReadTimeout}
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
// a killed daemon is removed, and the new one is only for root (0600). A socket
// another daemon serves is refused, never replaced.
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

// removeStaleSocket removes the socket a killed daemon left at path: one that
// refuses connections. A socket that accepts them, or answers in any other
// way, belongs to a daemon still running, and is refused: unlinking it would
// cut that daemon off from every shim while it runs on. (A daemon starting
// between this check and the bind is not caught; the check is for a second
// DaemonSet or a manual start, not a lock.) Anything else there, a file or a
// folder, is refused rather than deleted: the path is configuration, and a
// mistake in it must not cost someone's file.
func removeStaleSocket(path string) error {
	stale, err := checkSocket(path)
	if err != nil || !stale {
		return err
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing the old socket: %w", err)
	}
	return nil
}

// CheckSocketDir returns the error Listen would return for what is at the
// socket's path in dir (another daemon's live socket, or something that is no
// socket), or nil; it changes nothing. The daemon calls it before the slow part
// of its start-up, so that a second daemon fails at once.
func CheckSocketDir(dir string) error {
	_, err := checkSocket(SocketPath(dir))
	return err
}

// checkSocket reports whether path holds a stale socket, one nothing accepts
// connections on; an error when it holds a live socket or something else.
func checkSocket(path string) (stale bool, err error) {
	info, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("the old socket: %w", err)
	}
	if info.Mode().Type() != os.ModeSocket {
		return false, fmt.Errorf("%s is a %v, not a socket; remove it or choose another socket folder", path, info.Mode().Type())
	}
	conn, err := net.DialTimeout("unix", path, staleProbeTimeout)
	if err == nil {
		conn.Close()
		return false, fmt.Errorf("%s is served by another multus-daemon, which accepts connections on it; stop that daemon or choose another socketDir", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return false, fmt.Errorf("%s may be served by another multus-daemon (%w); not removing it", path, err)
	}
	return true, nil
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
		// The slot is taken before the body is read: past the bound a request
		// waits, costing no memory for its body, and is refused only when no
		// slot frees within QueueWait. A refusal costs the runtime a whole
		// sandbox retry (kubelet backs off for seconds), a wait only the wait.
		if !s.takeSlot(r.Context()) {
			s.observe(endpoint, "", "rejected", start)
			writeError(w, http.StatusTooManyRequests, types.NewError(cnicode.TryAgainLater,
				fmt.Sprintf("multus-daemon is at its limit of %d requests in flight and none finished within %s; try again later", cap(s.slots), s.opts.QueueWait), ""))
			return
		}
		defer func() { <-s.slots }()
		s.gauge(1)
		defer s.gauge(-1)
		// A slot is held while the body arrives, so the body gets a deadline
		// of its own; a writer of a slow body cannot keep the slot. The
		// deadline is lifted once the body is read: net/http keeps reading the
		// connection to notice a client going away, and a deadline passing
		// there would cancel the request.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(s.bodyTimeout))
		req, cerr := decodeRequest(http.MaxBytesReader(w, r.Body, s.opts.MaxRequestBytes))
		_ = rc.SetReadDeadline(time.Time{})
		if cerr != nil {
			s.observe(endpoint, "", "error", start)
			writeError(w, http.StatusBadRequest, cerr)
			return
		}
		command := req.Env["CNI_COMMAND"]
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

// takeSlot takes an in-flight slot, waiting up to QueueWait for one; it
// reports false when none came or the caller went away first.
func (s *Server) takeSlot(ctx context.Context) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	if s.opts.QueueWait <= 0 {
		return false
	}
	wait := time.NewTimer(s.opts.QueueWait)
	defer wait.Stop()
	select {
	case s.slots <- struct{}{}:
		return true
	case <-wait.C:
		return false
	case <-ctx.Done():
		return false
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
