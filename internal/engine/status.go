package engine

import (
	"context"
	"fmt"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/engine/attach"
	"github.com/polynet-cni/polynet/internal/request"
)

// Status answers whether pods can be added now (CNI 1.1): the readiness indicator
// is there, the API server answers and accepts our credentials when Kubernetes is
// configured, the cluster network resolves, and its plugins' own STATUS passes
// (plugins older than 1.1.0 have none and pass). Our own conditions fail with code
// 50, "plugin not available"; a delegate's failure keeps its code.
func (e *Engine) Status(ctx context.Context, req *request.Request, conf *config.PluginConf) error {
	if path := conf.ReadinessIndicatorFile; path != "" {
		if err := e.Files.Exists(path); err != nil {
			return &NotAvailableError{Reason: fmt.Sprintf("readiness indicator file %s: %v", path, err)}
		}
	}
	in := attach.Input{Conf: conf, Req: req, Confs: e.Confs}
	if e.Kube != nil {
		if err := e.Kube.Ready(ctx); err != nil {
			return &NotAvailableError{Reason: err.Error()}
		}
		in.NADs = e.Kube
	}
	cluster, err := attach.ClusterNetwork(ctx, in)
	if err != nil {
		return &NotAvailableError{Reason: "cluster network: " + err.Error()}
	}
	return e.Delegates.Status(ctx, cluster.Network, cluster.Config)
}
