package testbed

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"path/filepath"
	"sync"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// APIProxy stands between a client and the control plane's kube-apiserver. It
// passes every request through with the client's own credentials (a bearer
// token), so the API server's audit log still names the client, and it can hold
// back what the watches of one resource stream: a test then makes an informer
// lag behind the API server deterministically, instead of racing it.
type APIProxy struct {
	// URL is the proxy's address, https://127.0.0.1:<port>.
	URL string
	// CAData is the PEM certificate a client trusts to reach the proxy.
	CAData []byte

	srv   *httptest.Server
	mu    sync.Mutex
	gates map[string]chan struct{}
}

// StartAPIProxy starts a proxy to cp's API server, closed when the test ends.
// Only bearer-token clients (ServiceAccounts) can go through it: a client
// certificate ends at the proxy.
func StartAPIProxy(tb testing.TB, cp *ControlPlane) *APIProxy {
	tb.Helper()
	target, err := url.Parse(cp.URL)
	if err != nil {
		tb.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cp.CAData())
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig.RootCAs = roots
	p := &APIProxy{gates: map[string]chan struct{}{}}
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:     transport,
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			if q := resp.Request.URL.Query(); q.Get("watch") == "true" || q.Get("watch") == "1" {
				resp.Body = &heldBody{ReadCloser: resp.Body, proxy: p, resource: path.Base(resp.Request.URL.Path), ctx: resp.Request.Context()}
			}
			return nil
		},
	}
	// Connections cut at the end of a test are expected; their errors are noise.
	quiet := log.New(io.Discard, "", 0)
	proxy.ErrorLog = quiet
	p.srv = httptest.NewUnstartedServer(proxy)
	p.srv.Config.ErrorLog = quiet
	p.srv.StartTLS()
	tb.Cleanup(func() {
		// A client still running (a daemon stopped by a later cleanup) would
		// reconnect at once: refuse new connections before closing the open
		// ones, whose watches then end with their requests' contexts.
		p.ReleaseAll()
		p.srv.Listener.Close()
		p.srv.CloseClientConnections()
		p.srv.Close()
		transport.CloseIdleConnections()
	})
	p.URL = p.srv.URL
	p.CAData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	return p
}

// Hold stops passing on what the watches of resource (a plural such as "pods")
// stream, from the next event on, until Release: the API server's events wait in
// the proxy, in order.
func (p *APIProxy) Hold(resource string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gates[resource] == nil {
		p.gates[resource] = make(chan struct{})
	}
}

// Release passes on what Hold held back, and everything after it.
func (p *APIProxy) Release(resource string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if g := p.gates[resource]; g != nil {
		close(g)
		delete(p.gates, resource)
	}
}

// ReleaseAll releases every held resource.
func (p *APIProxy) ReleaseAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for r, g := range p.gates {
		close(g)
		delete(p.gates, r)
	}
}

func (p *APIProxy) gate(resource string) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gates[resource]
}

// heldBody is a watch's response body that, while its resource is held, keeps
// what it read until the release. It waits after reading, not before, so an
// event that arrives while a read is already waiting is held too.
type heldBody struct {
	io.ReadCloser
	proxy    *APIProxy
	resource string
	ctx      context.Context
}

func (b *heldBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	for g := b.proxy.gate(b.resource); g != nil; g = b.proxy.gate(b.resource) {
		select {
		case <-g:
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		}
	}
	return n, err
}

// UseAPIProxy points the daemon's kubeconfig at the proxy and restarts the
// daemon, which then lists and watches through it.
func (d *Daemon) UseAPIProxy(p *APIProxy) error {
	path := filepath.Join(d.Dir, "kubeconfig")
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return err
	}
	for _, c := range cfg.Clusters {
		c.Server = p.URL
		c.CertificateAuthorityData = p.CAData
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return err
	}
	return d.Restart()
}
