// Package nodecert gives the thick daemon a client certificate of its own node
// (daemon-config.json's perNodeCertificate): it asks the API server for one
// through a CertificateSigningRequest, keeps it and its key in a folder,
// renews it before it expires, and makes a client configuration that presents
// whichever certificate is current at each TLS handshake.
//
// The requests for certificates always go out with the bootstrap credentials
// (the daemon's ServiceAccount token, or the kubelet's kubeconfig as upstream's
// DaemonSet has it), never with the node's certificate: so the node's identity
// needs no more than the daemon's own rules, and a certificate the cluster no
// longer trusts cannot stop its own renewal.
package nodecert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	certificatesv1 "k8s.io/api/certificates/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/connrotation"
	"k8s.io/klog/v2"

	"github.com/polynet-cni/polynet/internal/nodeidentity"
)

// PairName names the files of the certificate store in the certificate
// folder: <PairName>-current.pem, a link to the newest
// <PairName>-<date>.pem, which holds the certificate and its key (upstream's
// names).
const PairName = "multus-client"

// Usages are the key usages the daemon requests: those of an ECDSA client
// certificate, which is what client-go generates, and what upstream requests.
var Usages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}

// rotationCheck is how often the client looks for a renewed certificate, to
// close its connections so that the next ones present the new certificate. The
// API server checks a client certificate's validity at every request, and a
// renewal happens at 70 to 90 per cent of the certificate's life, so this must
// stay well below a tenth of the shortest life a signer gives (10 minutes).
const rotationCheck = 5 * time.Second

// Options say which certificate to keep, and where.
type Options struct {
	// NodeName is the node whose identity the certificate carries.
	NodeName string
	// CertDir holds the certificate and its key; made (0700) if missing.
	CertDir string
	// Duration is the lifetime requested (the CSR's expirationSeconds); the
	// signer may give less. Zero leaves it to the signer.
	Duration time.Duration
	Log      *slog.Logger
}

// Identity is a node's client certificate, renewed in the background.
type Identity struct {
	mgr    certificate.Manager
	store  certificate.FileStore
	server *rest.Config // the bootstrap configuration without its credentials
	node   string
	log    *slog.Logger
	cancel context.CancelFunc
}

// Start loads the node's certificate from CertDir, or requests one with the
// bootstrap credentials, and keeps it renewed until ctx ends or Stop. It does
// not wait for a certificate: Wait does.
func Start(ctx context.Context, bootstrap *rest.Config, opts Options) (*Identity, error) {
	if !nodeidentity.ValidNodeName(opts.NodeName) {
		return nil, fmt.Errorf("per-node certificate: node name %q (MULTUS_NODE_NAME) is not a valid Node name", opts.NodeName)
	}
	if err := os.MkdirAll(opts.CertDir, 0o700); err != nil {
		return nil, fmt.Errorf("per-node certificate: perNodeCertificate.certDir: %w", err)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	store, err := certificate.NewFileStore(PairName, opts.CertDir, opts.CertDir, "", "")
	if err != nil {
		return nil, fmt.Errorf("per-node certificate: store in perNodeCertificate.certDir %s: %w", opts.CertDir, err)
	}
	// client-go's manager logs through klog, taken from its context: send it to
	// the daemon's log.
	ctx, cancel := context.WithCancel(ctx)
	mctx := klog.NewContext(ctx, logr.FromSlogHandler(log.With("component", "per-node certificate").Handler()))
	var lifetime *time.Duration
	if opts.Duration > 0 {
		lifetime = &opts.Duration
	}
	boot := rest.CopyConfig(bootstrap)
	mgr, err := certificate.NewManager(&certificate.Config{
		ClientsetFn: func(*tls.Certificate) (kubernetes.Interface, error) {
			return kubernetes.NewForConfig(boot)
		},
		Template: &x509.CertificateRequest{Subject: pkix.Name{
			CommonName: nodeidentity.UserName(opts.NodeName), Organization: []string{nodeidentity.Group},
		}},
		SignerName:                   nodeidentity.SignerName,
		RequestedCertificateLifetime: lifetime,
		Usages:                       Usages,
		CertificateStore:             store,
		Name:                         "per-node client certificate",
		Ctx:                          &mctx,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("per-node certificate: %w", err)
	}
	mgr.Start()
	return &Identity{mgr: mgr, store: store, server: rest.AnonymousClientConfig(bootstrap), node: opts.NodeName, log: log, cancel: cancel}, nil
}

// Wait waits until a certificate is current: at once when CertDir holds a
// valid one, else once the signer has issued the one requested. While it
// waits it logs, every logEvery, that it does. It fails only when ctx ends.
func (i *Identity) Wait(ctx context.Context, logEvery time.Duration) error {
	// The manager tells nobody of a new certificate: look often, it is cheap.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	last := start
	for i.mgr.Current() == nil {
		select {
		case <-ctx.Done():
			return fmt.Errorf("per-node certificate for %s: none issued after %s (is the CSR approved? kubectl get csr): %w",
				nodeidentity.UserName(i.node), time.Since(start).Round(time.Second), ctx.Err())
		case now := <-tick.C:
			if now.Sub(last) >= logEvery {
				last = now
				i.log.Warn("waiting for the per-node client certificate: its CertificateSigningRequest needs an approver and a signer",
					"user", nodeidentity.UserName(i.node), "waited", now.Sub(start).Round(time.Second))
			}
		}
	}
	cert := i.mgr.Current()
	i.log.Info("per-node client certificate", "user", cert.Leaf.Subject.CommonName, "notAfter", cert.Leaf.NotAfter,
		"file", i.store.CurrentPath(), "waited", time.Since(start).Round(time.Millisecond))
	return nil
}

// Current is the certificate in use, nil before the first or once it expired.
func (i *Identity) Current() *tls.Certificate { return i.mgr.Current() }

// Stop ends the renewals and the client's watch for them.
func (i *Identity) Stop() {
	i.mgr.Stop()
	i.cancel()
}

// ClientConfig returns a configuration for the API server of the bootstrap
// configuration, without the bootstrap's credentials, that authenticates with
// the node's certificate: the one current at each TLS handshake. When the
// certificate is renewed, its open connections are closed, so that requests
// go on over new ones with the new certificate. Callers may set rate limits,
// timeouts, the user agent and WrapTransport on it, not TLS settings.
func (i *Identity) ClientConfig(ctx context.Context) (*rest.Config, error) {
	cfg := rest.CopyConfig(i.server)
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("per-node certificate: TLS settings of the bootstrap kubeconfig: %w", err)
	}
	if tlsCfg == nil {
		return nil, errors.New("per-node certificate: the bootstrap configuration's server is not https")
	}
	tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if c := i.mgr.Current(); c != nil {
			return c, nil
		}
		// No certificate: the handshake goes on, and the API server answers
		// 401, which the caller retries.
		return &tls.Certificate{}, nil
	}
	dialer := connrotation.NewDialer((&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	if cfg.Dial != nil {
		dialer = connrotation.NewDialer(cfg.Dial)
	}
	cfg.Transport = utilnet.SetTransportDefaults(&http.Transport{
		Proxy:               cfg.Proxy, // nil: the environment's, as client-go's
		TLSClientConfig:     tlsCfg,
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 25,
		IdleConnTimeout:     90 * time.Second,
	})
	// client-go refuses a transport of the caller's beside TLS settings.
	cfg.TLSClientConfig = rest.TLSClientConfig{}
	cfg.Dial, cfg.Proxy = nil, nil
	go i.closeOnRenewal(ctx, dialer)
	return cfg, nil
}

// closeOnRenewal closes the connections dialer made whenever the current
// certificate changes, until ctx ends.
func (i *Identity) closeOnRenewal(ctx context.Context, dialer *connrotation.Dialer) {
	last := i.mgr.Current()
	tick := time.NewTicker(rotationCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cur := i.mgr.Current()
		if cur == last || cur == nil {
			continue
		}
		if last != nil {
			i.log.Info("per-node client certificate renewed: reconnecting", "notAfter", cur.Leaf.NotAfter)
		}
		last = cur
		dialer.CloseAll()
	}
}
