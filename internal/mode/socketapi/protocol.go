// Package socketapi is the socket protocol between multus-shim and multus-daemon:
// the request and response bodies of both ends, in upstream's shape, so that
// third parties written against upstream (multus-dynamic-networks-controller's
// /delegate calls) work unchanged, and a small client.
package socketapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

// Endpoints of the daemon's socket.
const (
	SocketName       = "multus.sock"
	PathCNI          = "/cni"
	PathDelegate     = "/delegate"
	PathHealthz      = "/healthz"
	PathReadyz       = "/readyz"
	maxResponseBytes = 4 << 20
)

// SocketPath is the daemon's socket inside socketDir.
func SocketPath(dir string) string { return filepath.Join(dir, SocketName) }

// Request is the body of POST /cni and /delegate: the CNI environment and the
// stdin configuration (base64 in JSON, as Go encodes []byte), plus, for /delegate,
// the interface's requested attributes.
type Request struct {
	Env                 map[string]string    `json:"env"`
	Config              []byte               `json:"config"`
	InterfaceAttributes *InterfaceAttributes `json:"interfaceAttributes,omitempty"`
}

// InterfaceAttributes are a hot-plugged interface's requests (/delegate).
type InterfaceAttributes struct {
	IPRequest  []string        `json:"ips,omitempty"`
	MacRequest string          `json:"mac,omitempty"`
	CNIArgs    *map[string]any `json:"cni-args,omitempty"`
}

// Response is the body of a successful request: the result for ADD, nothing for
// other commands.
type Response struct {
	Result json.RawMessage `json:"Result,omitempty"`
}

// UnreachableError says the daemon could not be reached: no socket, nothing
// listening, or no answer in time. It carries CNI code 11, so the runtime retries.
type UnreachableError struct {
	Socket string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("multus-daemon at %s is not reachable (try again later): %v", e.Socket, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// CNICode reports TryAgainLater.
func (e *UnreachableError) CNICode() uint { return cnicode.TryAgainLater }

// Client calls the daemon.
type Client struct {
	Socket string
	// ConnectTimeout bounds reaching the daemon; RequestTimeout the whole call.
	ConnectTimeout time.Duration
	RequestTimeout time.Duration
}

// Do posts req to path and returns the response; a CNI error the daemon answered
// is returned as *types.Error with its code.
func (c Client) Do(ctx context.Context, path string, req *Request) (*Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.RequestTimeout)
	defer cancel()
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://multus"+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	httpReq.Header.Set("Content-Type", "application/json")
	resp, err := c.client().Do(httpReq)
	if err != nil {
		return nil, &UnreachableError{Socket: c.Socket, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, &UnreachableError{Socket: c.Socket, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		var ce types.Error
		if json.Unmarshal(data, &ce) == nil && (ce.Code != 0 || ce.Msg != "") {
			return nil, &ce
		}
		return nil, types.NewError(cnicode.Internal, fmt.Sprintf("multus-daemon answered %s: %s", resp.Status, bytes.TrimSpace(data)), "")
	}
	var out Response
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			return nil, fmt.Errorf("multus-daemon answer: %w", err)
		}
	}
	return &out, nil
}

// Get probes an endpoint such as /readyz and returns its HTTP status.
func (c Client) Get(ctx context.Context, path string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://multus"+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return 0, &UnreachableError{Socket: c.Socket, Err: err}
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (c Client) client() *http.Client {
	connect := c.ConnectTimeout
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: connect}
			return d.DialContext(ctx, "unix", c.Socket)
		},
		DisableKeepAlives: true,
	}}
}

// IsUnreachable reports whether err says the daemon could not be reached.
func IsUnreachable(err error) bool {
	var ue *UnreachableError
	return errors.As(err, &ue)
}
