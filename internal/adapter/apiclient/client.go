// Package apiclient is the engine's adapter to the Kubernetes API server for the thin
// plugin: GET of pods and NADs, a merge PATCH of the network-status annotation on
// the pod's status subresource, and events. It speaks JSON over the standard
// library's HTTP client and decodes into package podnet's plain types, so the
// per-pod binary links no client-go at all.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// Client talks to one API server.
type Client struct {
	host string
	http *http.Client
	auth string
	// Timeout bounds each request.
	Timeout time.Duration
	// RetryBudget bounds the total time spent retrying transient failures.
	RetryBudget time.Duration
	// UserAgent identifies us in the API server's logs and audit.
	UserAgent string
	// Component is the events' source.
	Component string
	// Host is the node name given to events as the reporting instance.
	Host string
}

// New builds a client from a configuration, reading its credential files now.
func New(cfg *Config, timeout, retryBudget time.Duration) (*Client, error) {
	hc, auth, err := cfg.httpClient()
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Client{
		host: strings.TrimSuffix(cfg.Host, "/"), http: hc, auth: auth, Timeout: timeout, RetryBudget: retryBudget,
		UserAgent: "multus-polynet", Component: "multus",
	}, nil
}

// do sends one request, retrying transient failures with backoff until the retry
// budget is spent, and decodes a 2xx JSON answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	deadline := time.Now().Add(c.RetryBudget)
	backoff := 100 * time.Millisecond
	for {
		err := c.once(ctx, method, path, contentType, body, out)
		var apiErr *podnet.APIError
		if err == nil || !errors.As(err, &apiErr) || !apiErr.Transient || time.Now().Add(backoff).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (c *Client) once(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.host+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.UserAgent)
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &podnet.APIError{Op: method + " " + path, Err: err, Transient: transientNetError(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return &podnet.APIError{Op: method + " " + path, Status: resp.StatusCode, Err: err, Transient: true}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &podnet.APIError{Op: method + " " + path, Status: resp.StatusCode, Err: errors.New(statusMessage(data)),
			Transient: resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("kubernetes API %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// transientNetError reports whether a transport error is worth retrying: refused
// or reset connections and timeouts, as while an API server restarts.
func transientNetError(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

// statusMessage extracts the message of a metav1.Status answer.
func statusMessage(data []byte) string {
	var st struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &st) == nil && st.Message != "" {
		return st.Message
	}
	if len(data) > 200 {
		data = data[:200]
	}
	return strings.TrimSpace(string(data))
}

func escape(s string) string { return url.PathEscape(s) }
