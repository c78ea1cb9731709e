// Package apiclient is the engine's adapter to the Kubernetes API server for the thin
// plugin: GET of pods and NADs (and of a pod's DRA ResourceClaims, LIST of their
// pools' ResourceSlices), a merge PATCH of the network-status annotation on
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
	"strconv"
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

	// now and sleep are the clock the retries run on; tests replace them.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// New builds a client from a configuration, reading its credential files now.
func New(cfg *Config, timeout, retryBudget time.Duration) (*Client, error) {
	hc, auth, err := cfg.httpClient()
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Client{
		host: strings.TrimSuffix(cfg.Host, "/"), http: hc, auth: auth, Timeout: timeout, RetryBudget: retryBudget,
		UserAgent: "multus-polynet", Component: "multus", now: time.Now, sleep: sleep,
	}, nil
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// do sends one request, retrying transient failures until the retry budget is
// spent, and decodes a 2xx JSON answer into out (when not nil). Between tries it
// backs off from 100 ms to 1 s, and waits at least what a 429 or 5xx answer's
// Retry-After asks; when that is beyond the budget it gives up at once instead of
// asking again early.
func (c *Client) do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	deadline := c.now().Add(c.RetryBudget)
	backoff := 100 * time.Millisecond
	for {
		retryAfter, err := c.once(ctx, method, path, contentType, body, out)
		var apiErr *podnet.APIError
		if err == nil || !errors.As(err, &apiErr) || !apiErr.Transient {
			return err
		}
		wait := max(backoff, retryAfter)
		if c.now().Add(wait).After(deadline) {
			if retryAfter > 0 {
				return fmt.Errorf("%w (the API server asked to retry after %s, beyond the retry budget)", err, retryAfter)
			}
			return err
		}
		if c.sleep(ctx, wait) != nil {
			return err
		}
		backoff = min(2*backoff, time.Second)
	}
}

// once sends one request. A failed answer is a *podnet.APIError whose Err is the
// server's *apiStatus when it sent one; retryAfter is the answer's Retry-After,
// for 429 and 5xx.
func (c *Client) once(ctx context.Context, method, path, contentType string, body []byte, out any) (retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.host+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
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
		return 0, &podnet.APIError{Op: method + " " + path, Err: err, Transient: transientNetError(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, &podnet.APIError{Op: method + " " + path, Status: resp.StatusCode, Err: err, Transient: true}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		transient := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		if transient {
			retryAfter = retryAfterHeader(resp.Header.Get("Retry-After"))
		}
		return retryAfter, &podnet.APIError{Op: method + " " + path, Status: resp.StatusCode, Err: decodeStatus(data), Transient: transient}
	}
	if out == nil {
		return 0, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return 0, fmt.Errorf("kubernetes API %s %s: decoding the answer: %w", method, path, err)
	}
	return 0, nil
}

// retryAfterHeader reads Retry-After in seconds, as the API server sends it and
// client-go reads it; anything else is no delay.
func retryAfterHeader(v string) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || secs < 0 {
		return 0
	}
	return time.Duration(secs) * time.Second
}

// transientNetError reports whether a transport error is worth retrying: refused
// or reset connections and timeouts, as while an API server restarts.
func transientNetError(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

// apiStatus is the part of a metav1.Status answer that callers branch on.
type apiStatus struct {
	Message string `json:"message"`
	Reason  string `json:"reason"`
	Details struct {
		Causes []struct {
			Reason string `json:"reason"`
			Field  string `json:"field"`
		} `json:"causes"`
	} `json:"details"`
}

func (s *apiStatus) Error() string { return s.Message }

// decodeStatus is the error of a failed answer: its metav1.Status, or the start
// of whatever else it holds.
func decodeStatus(data []byte) error {
	var st apiStatus
	if json.Unmarshal(data, &st) == nil && st.Message != "" {
		return &st
	}
	if len(data) > 200 {
		data = data[:200]
	}
	return errors.New(strings.TrimSpace(string(data)))
}

func escape(s string) string { return url.PathEscape(s) }
