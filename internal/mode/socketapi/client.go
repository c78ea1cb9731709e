package socketapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

// MaxResponseBytes bounds the answer the client reads: a result of a pod with
// many interfaces is a few kilobytes, so anything near this is not a result.
const MaxResponseBytes = 4 << 20

// maxQuotedBytes bounds how much of an answer that is not a CNI error object
// an error message quotes.
const maxQuotedBytes = 512

// ErrResponseTooLarge says the daemon's answer is over MaxResponseBytes.
var ErrResponseTooLarge = fmt.Errorf("multus-daemon's answer is over the %d-byte bound", MaxResponseBytes)

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
	// Zero leaves the call bounded only by the caller's context.
	ConnectTimeout time.Duration
	RequestTimeout time.Duration
}

// Do posts req to path and returns the response. The request goes with
// ProtocolVersion when req sets none; req itself is not changed. A CNI error the
// daemon answered is returned as *types.Error with its code.
func (c Client) Do(ctx context.Context, path string, req *Request) (*Response, error) {
	sent := *req
	if sent.ProtocolVersion == 0 {
		sent.ProtocolVersion = ProtocolVersion
	}
	body, err := json.Marshal(&sent)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.bound(ctx)
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
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, &UnreachableError{Socket: c.Socket, Err: err}
	}
	if len(data) > MaxResponseBytes {
		return nil, ErrResponseTooLarge
	}
	if resp.StatusCode != http.StatusOK {
		return nil, answerError(resp.Status, data)
	}
	var out Response
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			return nil, fmt.Errorf("multus-daemon's answer: %w", err)
		}
	}
	return &out, nil
}

// answerError turns a failed answer into an error: the CNI error object the
// daemon sent, or, from something else on the socket, an internal error quoting
// the start of what it said.
func answerError(status string, data []byte) error {
	var ce types.Error
	if json.Unmarshal(data, &ce) == nil && (ce.Code != 0 || ce.Msg != "") {
		return &ce
	}
	quoted := bytes.TrimSpace(data)
	if len(quoted) > maxQuotedBytes {
		cut := maxQuotedBytes
		for cut > 0 && !utf8.RuneStart(quoted[cut]) {
			cut--
		}
		quoted = append(quoted[:cut:cut], "..."...)
	}
	return types.NewError(cnicode.Internal, fmt.Sprintf("multus-daemon answered %s: %s", status, quoted), "")
}

// Get probes an endpoint such as /readyz and returns its HTTP status.
func (c Client) Get(ctx context.Context, path string) (int, error) {
	ctx, cancel := c.bound(ctx)
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

func (c Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.RequestTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.RequestTimeout)
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
