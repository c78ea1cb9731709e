package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/containernetworking/cni/pkg/invoke"

	"github.com/polynet-cni/polynet/internal/adapter/apicache"
	"github.com/polynet-cni/polynet/internal/adapter/delegate"
	"github.com/polynet-cni/polynet/internal/cniconf"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/engine"
	"github.com/polynet-cni/polynet/internal/engine/attach"
	"github.com/polynet-cni/polynet/internal/metrics"
	"github.com/polynet-cni/polynet/internal/mode/nodeengine"
	"github.com/polynet-cni/polynet/internal/mode/socketapi"
	"github.com/polynet-cni/polynet/internal/request"
	"github.com/polynet-cni/polynet/internal/selection"
)

// dispatcher runs socket requests through the engine, the same engine as the
// thin plugin's, with the informer cache as its Kubernetes.
type dispatcher struct {
	conf    *config.DaemonConf
	kube    *apicache.Cache
	metrics *metrics.Metrics
	exec    invoke.Exec
	log     *slog.Logger
	locks   sandboxLocks
	// claims reads DRA objects for the engines; nil when the API server
	// serves no DRA.
	claims attach.ClaimSource
	// dynamic follows pods' networks annotation; nil unless dynamicNetworks.
	dynamic *dynamicNetworks
}

// prepare builds the typed request from the request's own environment, and the
// plugin configuration: the shim's, with the daemon's keys laid over.
func (d *dispatcher) prepare(r *socketapi.Request) (*request.Request, *config.PluginConf, error) {
	command := r.Env["CNI_COMMAND"]
	req, err := request.FromEnv(command, func(k string) string { return r.Env[k] }, r.Config)
	if err != nil {
		return nil, nil, err
	}
	merged, err := d.conf.Overlay(r.Config)
	if err != nil {
		return nil, nil, err
	}
	conf, err := config.ParsePlugin(merged)
	if err != nil {
		return nil, nil, err
	}
	// A generated configuration leaves the indicator out (the daemon watches
	// it and withdraws the configuration when it goes), but STATUS is how the
	// runtime asks whether the node's networks are ready: it checks the
	// daemon's indicator whatever the configuration says.
	if req.Command == request.Status && conf.ReadinessIndicatorFile == "" {
		conf.ReadinessIndicatorFile = d.conf.ReadinessIndicatorFile
	}
	return req, conf, nil
}

// engine assembles the engine of one request. A rollback or a DEL's teardown
// outlives its request when the shim goes away (the runtime's timeout killed
// it), which ends the request's context; it is bounded as a request is.
func (d *dispatcher) engine(conf *config.PluginConf, req *request.Request) *engine.Engine {
	eng := nodeengine.New(conf, req, nodeengine.Options{
		Kube: d.kube,
		Exec: d.exec,
		Instrument: func(r *delegate.Runner) engine.Delegates {
			return instrumented{Runner: r, metrics: d.metrics}
		},
		Claims: d.claims,
		Log:    d.log,
	})
	eng.CleanupTimeout = d.conf.RequestTimeout.Duration
	return eng
}

// CNI runs a command for the shim. Commands on one sandbox are serialised (R-7.3:
// no parallel operations for the same container); different sandboxes run in
// parallel, never behind a global lock.
func (d *dispatcher) CNI(ctx context.Context, r *socketapi.Request) (json.RawMessage, error) {
	req, conf, err := d.prepare(r)
	if err != nil {
		return nil, err
	}
	defer d.locks.lock(req.ContainerID)()
	out, err := d.engine(conf, req).Handle(ctx, req, conf)
	d.track(req, conf, err)
	return out, err
}

// track keeps dynamic networks' index of sandboxes current. A sandbox just
// added is reconciled once: its pod's annotation may have changed after the
// ADD read it.
func (d *dispatcher) track(req *request.Request, conf *config.PluginConf, err error) {
	if d.dynamic == nil || err != nil || req.ContainerID == "" {
		return
	}
	switch req.Command {
	case request.Add:
		if req.HasPod() {
			d.dynamic.index.put(req.ContainerID, req.Pod, conf.CNIVersion, conf, req.Path)
			d.dynamic.enqueue(req.Pod)
		}
	case request.Del:
		d.dynamic.index.remove(req.ContainerID)
	}
}

// Delegate runs upstream's /delegate: one network, given as its CNI
// configuration, attached to or detached from a running pod.
func (d *dispatcher) Delegate(ctx context.Context, r *socketapi.Request) (json.RawMessage, error) {
	req, err := request.FromEnv(r.Env["CNI_COMMAND"], func(k string) string { return r.Env[k] }, r.Config)
	if err != nil {
		return nil, err
	}
	// The configuration is the delegate's own; the daemon's keys make the
	// plugin configuration the engine works with, in the delegate's version
	// (1.0.0 when it declares none).
	cniVersion := cniconf.Version(r.Config)
	if cniVersion == "" {
		cniVersion = "1.0.0"
	}
	// Built with encoding/json: the configuration is one element of delegates,
	// and a configuration that is not one JSON value is refused here rather
	// than pasted into the plugin configuration's text.
	plugin, err := json.Marshal(map[string]any{
		"cniVersion": cniVersion, "name": "multus-delegate", "type": "multus-shim",
		"delegates": []json.RawMessage{r.Config},
	})
	if err != nil {
		return nil, &attach.ConfigError{Network: "delegate", Source: "the request", Err: fmt.Errorf("not one JSON value: %w", err)}
	}
	base, err := d.conf.Overlay(plugin)
	if err != nil {
		return nil, err
	}
	conf, err := config.ParsePlugin(base)
	if err != nil {
		return nil, err
	}
	defer d.locks.lock(req.ContainerID)()
	eng := d.engine(conf, req)
	switch req.Command {
	case request.Add:
		res, err := eng.DelegateAdd(ctx, req, conf, r.Config, selectionOf(r.InterfaceAttributes))
		if err != nil {
			return nil, err
		}
		return json.Marshal(res)
	case request.Del:
		return nil, eng.DelegateDel(ctx, req, conf, r.Config)
	case request.Status:
		return nil, eng.Delegates.Status(ctx, "delegate", r.Config)
	default:
		return nil, fmt.Errorf("/delegate does not take %s", req.Command)
	}
}

// selectionOf turns /delegate's interface attributes into a selection element,
// so they reach the delegate the way the annotation's keys do.
func selectionOf(a *socketapi.InterfaceAttributes) *selection.Element {
	if a == nil {
		return nil
	}
	sel := &selection.Element{IPs: a.IPRequest, MAC: a.MacRequest}
	if a.CNIArgs != nil {
		sel.CNIArgs = *a.CNIArgs
	}
	return sel
}

// sandboxLocks serialises the requests of one sandbox.
type sandboxLocks struct {
	mu    sync.Mutex
	locks map[string]*sandboxLock
}

type sandboxLock struct {
	sync.Mutex
	users int
}

func (s *sandboxLocks) lock(id string) func() {
	if id == "" {
		return func() {}
	}
	s.mu.Lock()
	if s.locks == nil {
		s.locks = map[string]*sandboxLock{}
	}
	l := s.locks[id]
	if l == nil {
		l = &sandboxLock{}
		s.locks[id] = l
	}
	l.users++
	s.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		s.mu.Lock()
		if l.users--; l.users == 0 {
			delete(s.locks, id)
		}
		s.mu.Unlock()
	}
}
