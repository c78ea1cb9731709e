// Package daemon is multus-daemon: the node agent of thick mode. It fills pod and
// NAD caches for its node, serves the shim's socket with the same engine the thin
// plugin runs, exposes metrics, generates the shim's CNI configuration once it can
// serve, and shuts down gracefully. Its lifetime is its context, as in
// sample-controller's Run.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/polynet-cni/polynet/internal/adapter/apicache"
	"github.com/polynet-cni/polynet/internal/adapter/delegate"
	"github.com/polynet-cni/polynet/internal/adapter/store"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/metrics"
	"github.com/polynet-cni/polynet/internal/mode/socketapi"
	"github.com/polynet-cni/polynet/internal/setup/confmgr"
)

// Options are what the daemon takes from its environment.
type Options struct {
	// NodeName (MULTUS_NODE_NAME) scopes the pod cache to this node's pods.
	NodeName string
	Log      *slog.Logger
	// Registry receives the metrics; nil makes a new one.
	Registry *prometheus.Registry
}

// Run runs the daemon until ctx ends, then shuts down within the configured
// bound. A failed start (no API server, caches that do not sync, a socket that
// cannot be made) is an error, never a daemon that serves from nothing.
func Run(ctx context.Context, conf *config.DaemonConf, opts Options) error {
	log := opts.Log
	if os.Geteuid() != 0 {
		return errors.New("multus-daemon must run as root: it creates network interfaces in pods")
	}
	if perNode(conf) && opts.NodeName == "" {
		return errors.New("daemon config: perNodeCertificate needs the node's name in MULTUS_NODE_NAME")
	}
	// Before the caches, which take a while and load the API server: a second
	// daemon on the same socket fails at once, and leaves the first serving.
	if err := socketapi.CheckSocketDir(conf.SocketDir); err != nil {
		return err
	}
	if opts.NodeName == "" {
		log.Warn("MULTUS_NODE_NAME is not set: caching the pods of every node")
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := metrics.New(reg, recordCount(conf))
	restCfg, stopIdentity, err := clientConfig(ctx, conf, opts)
	if err != nil {
		return err
	}
	defer stopIdentity()
	restCfg.Wrap(m.CountingTransport)
	cache, err := apicache.New(restCfg, opts.NodeName, "multus")
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	defer cache.Stop()
	var exec invoke.Exec
	if conf.ChrootDir != "" {
		exec = delegate.ChrootExec{Root: conf.ChrootDir}
	}
	d := &dispatcher{conf: conf, kube: cache, metrics: m, exec: exec, log: log}
	var background []func(context.Context) error
	if conf.DynamicNetworks {
		// Watched before the caches start, so that every pod listed at start
		// is reconciled once: changes made while the daemon was away too.
		d.dynamic = newDynamicNetworks(d, cache, log)
		if err := cache.WatchNetworks(d.dynamic.enqueue); err != nil {
			return fmt.Errorf("dynamic networks: %w", err)
		}
		if err := d.dynamic.load(conf.CNIDir); err != nil {
			return err
		}
		background = append(background, d.dynamic.run)
	}
	if log.Enabled(ctx, slog.LevelDebug) {
		if err := cache.LogArrivals(log); err != nil {
			return fmt.Errorf("kubernetes client: %w", err)
		}
	}
	if err := cache.Start(ctx, conf.CacheSyncTimeout.Duration); err != nil {
		return err
	}
	if d.claims, err = startClaims(ctx, restCfg, conf, opts.NodeName, log); err != nil {
		return err
	}
	limit := 0
	if conf.ConnectionLimit != nil {
		limit = *conf.ConnectionLimit
	}
	srv := socketapi.New(d, socketapi.Options{
		SocketDir: conf.SocketDir, ConnectionLimit: limit, MaxInFlight: conf.MaxInFlight,
		MaxRequestBytes: conf.MaxRequestBytes, RequestTimeout: conf.RequestTimeout.Duration, Observer: m,
		QueueWait: min(maxQueueWait, conf.RequestTimeout.Duration),
	})
	if err := srv.Listen(); err != nil {
		return err
	}
	return serve(ctx, conf, log, reg, srv, background...)
}

// serve runs the socket, the metrics listener and the configuration manager, and
// shuts them down when ctx ends.
//
// background are run beside them until ctx ends.
func serve(ctx context.Context, conf *config.DaemonConf, log *slog.Logger, reg *prometheus.Registry, srv *socketapi.Server, background ...func(context.Context) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(srv.Serve)
	for _, run := range background {
		g.Go(func() error { return run(gctx) })
	}
	metricsSrv, err := startMetrics(g, conf, reg)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	srv.SetReady(true)
	log.Info("serving", "socket", filepath.Join(conf.SocketDir, "multus.sock"))
	g.Go(func() error {
		return confmgr.New(confmgr.Options{Daemon: conf, Log: log}).Run(gctx)
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down", "grace", conf.ShutdownTimeout.Duration)
		sctx, cancel := context.WithTimeout(context.Background(), conf.ShutdownTimeout.Duration)
		defer cancel()
		err := srv.Shutdown(sctx)
		if metricsSrv != nil {
			err = errors.Join(err, metricsSrv.Shutdown(sctx))
		}
		return err
	})
	return g.Wait()
}

// startMetrics serves /metrics (and pprof when enabled) on metricsPort.
//
// With metricsAddress unset the listener takes every address, as upstream's
// does, so that Prometheus can scrape the node; pprof, which hands out the
// process's command line, heap and goroutine stacks and runs CPU profiles on
// demand, then answers only connections made to a loopback address: the
// port cannot be bound twice (0.0.0.0 and 127.0.0.1) on Linux, so the check
// is on the connection's local address, which only the node itself (or a
// port-forward into the daemon's network namespace) can reach as loopback.
// An address the operator sets carries both, as configured.
func startMetrics(g *errgroup.Group, conf *config.DaemonConf, reg *prometheus.Registry) (*http.Server, error) {
	if conf.MetricsPort == nil {
		return nil, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if conf.EnablePprof {
		guard := func(h http.HandlerFunc) http.HandlerFunc { return h }
		if conf.MetricsAddress == "" {
			guard = loopbackOnly
		}
		mux.HandleFunc("/debug/pprof/", guard(pprof.Index))
		mux.HandleFunc("/debug/pprof/cmdline", guard(pprof.Cmdline))
		mux.HandleFunc("/debug/pprof/profile", guard(pprof.Profile))
		mux.HandleFunc("/debug/pprof/symbol", guard(pprof.Symbol))
		mux.HandleFunc("/debug/pprof/trace", guard(pprof.Trace))
	}
	addr := net.JoinHostPort(conf.MetricsAddress, strconv.Itoa(*conf.MetricsPort))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	s := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	g.Go(func() error {
		if err := s.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return s, nil
}

// loopbackOnly serves h to connections made to a loopback address, and 404 to
// the others, as if h were not there.
func loopbackOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if tcp, ok := local.(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}
}

// maxQueueWait bounds how long a request past maxInFlight waits for a slot.
// kubelet gives a sandbox's creation two minutes (its runtime request
// timeout): a request still queued after one is better refused with "try
// again later" than run for a caller that is about to give up.
const maxQueueWait = time.Minute

// restConfig is the daemon's client configuration: a kubeconfig when the daemon
// configuration names one, else the pod's in-cluster credentials, whose rotated
// token client-go re-reads.
func restConfig(conf *config.DaemonConf) (*rest.Config, error) {
	cfg, err := credentials(conf.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes credentials: %w", err)
	}
	return tune(cfg), nil
}

// credentials reads a kubeconfig, or the pod's in-cluster credentials when
// path is empty.
func credentials(path string) (*rest.Config, error) {
	if path != "" {
		return clientcmd.BuildConfigFromFlags("", path)
	}
	return rest.InClusterConfig()
}

// tune sets the daemon's rate limits, timeout and user agent on cfg.
func tune(cfg *rest.Config) *rest.Config {
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "multus-daemon-polynet"
	cfg.Timeout = 30 * time.Second
	return cfg
}

// recordCount counts the attachment records in the node's cniDir.
func recordCount(conf *config.DaemonConf) func() float64 {
	st := store.New(conf.CNIDir)
	return func() float64 {
		ids, _ := st.List()
		return float64(len(ids))
	}
}
