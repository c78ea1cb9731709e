package apiclient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// seen is one request as the fake API server received it.
type seen struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

// apiServer plays the API server: it records every request and answers with
// the scripted handler, which gets the request's 0-based number.
type apiServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

// answer writes a status and a JSON body, headers first.
func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func newAPIServer(t *testing.T, tls bool, handle func(n int, w http.ResponseWriter, r *http.Request)) *apiServer {
	t.Helper()
	s := &apiServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		s.mu.Unlock()
		handle(n, w, r)
	})
	if tls {
		s.Server = httptest.NewTLSServer(h)
	} else {
		s.Server = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.reqs...)
}

// plainClient is a client of a plain-HTTP fake with a bearer token.
func plainClient(t *testing.T, s *apiServer, budget time.Duration) *Client {
	t.Helper()
	c, err := New(&Config{Host: s.URL, Token: "secret-token"}, 5*time.Second, budget)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
