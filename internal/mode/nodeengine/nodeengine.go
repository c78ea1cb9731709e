// Package nodeengine assembles the engine with the node's adapters, the one way
// both modes do it: the thin plugin for each invocation, the daemon for each
// socket request. Only the Kubernetes adapter (direct requests or informer
// caches), the way delegates are executed (in a chroot or not) and the
// daemon's instrumentation differ, and those come in as Options, so the two
// modes cannot drift apart in what else their engines are made of.
package nodeengine

import (
	"log/slog"

	"github.com/containernetworking/cni/pkg/invoke"

	"github.com/polynet-cni/polynet/internal/adapter/confdir"
	"github.com/polynet-cni/polynet/internal/adapter/delegate"
	"github.com/polynet-cni/polynet/internal/adapter/hostfiles"
	"github.com/polynet-cni/polynet/internal/adapter/netnsroute"
	"github.com/polynet-cni/polynet/internal/adapter/podresources"
	"github.com/polynet-cni/polynet/internal/adapter/store"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/engine"
	"github.com/polynet-cni/polynet/internal/engine/attach"
	"github.com/polynet-cni/polynet/internal/request"
)

// Options are what differs between the modes.
type Options struct {
	// Kube is the API server; nil runs delegates-only (no kubeconfig, not in a
	// cluster). Pass an untyped nil, never a nil pointer of an adapter type.
	Kube engine.Kubernetes
	// Exec runs delegate binaries; nil is libcni's default (the host's).
	Exec invoke.Exec
	// Instrument wraps the delegates, for the daemon's metrics; nil leaves them
	// as they are.
	Instrument func(*delegate.Runner) engine.Delegates
	// Claims reads pods' ResourceClaims and the node's ResourceSlices, whose
	// network devices join kubelet's; nil reads none (no API server, or one
	// that does not serve resource.k8s.io/v1). Pass an untyped nil.
	Claims attach.ClaimSource
	Log    *slog.Logger
}

// New returns the engine for one request: delegates are looked up in the
// configuration's binDir(s), then the runtime's CNI_PATH, and cached in cniDir,
// where the attachment records live too.
func New(conf *config.PluginConf, req *request.Request, o Options) *engine.Engine {
	runner := &delegate.Runner{Path: append(conf.BinDirs(), req.Path...), CacheDir: conf.CNIDir, Exec: o.Exec}
	var delegates engine.Delegates = runner
	if o.Instrument != nil {
		delegates = o.Instrument(runner)
	}
	return &engine.Engine{
		Kube:      o.Kube,
		Delegates: delegates,
		Routes:    netnsroute.Editor{},
		Devices:   devices(conf, req, o),
		Confs:     confdir.Source{},
		Records:   store.New(conf.CNIDir),
		Files:     hostfiles.Files{},
		Log:       o.Log,
	}
}

// devices are kubelet's device-plugin allocations and, when the API server
// serves DRA, the network devices of the pod's ResourceClaims.
func devices(conf *config.PluginConf, req *request.Request, o Options) attach.Devices {
	d := attach.Devices{
		Kubelet: podresources.Source{Socket: conf.PodResourcesSocket, Checkpoint: conf.KubeletCheckpoint, Timeout: conf.APITimeout.Duration},
		Claims:  o.Claims,
	}
	if o.Log != nil {
		d.Log = o.Log.With("containerID", req.ContainerID, "pod", req.Pod.String())
	}
	return d
}
