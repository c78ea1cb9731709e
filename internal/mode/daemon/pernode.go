package daemon

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/rest"

	"github.com/polynet-cni/polynet/internal/adapter/nodecert"
	"github.com/polynet-cni/polynet/internal/config"
)

// certWaitLog is how often a daemon waiting for its first per-node certificate
// says so.
const certWaitLog = 30 * time.Second

func perNode(conf *config.DaemonConf) bool {
	return conf.PerNodeCertificate != nil && conf.PerNodeCertificate.Enabled
}

// clientConfig is the configuration of every API request the daemon makes, and
// what stops the renewal of its certificate (nothing without one). With
// perNodeCertificate, it waits, as long as ctx lasts, for the node's first
// certificate: the daemon serves nothing before it can read pods as its node.
func clientConfig(ctx context.Context, conf *config.DaemonConf, opts Options) (*rest.Config, func(), error) {
	if !perNode(conf) {
		cfg, err := restConfig(conf)
		return cfg, func() {}, err
	}
	pn := conf.PerNodeCertificate
	path := cmp.Or(pn.BootstrapKubeconfig, conf.Kubeconfig)
	bootstrap, err := credentials(path)
	if err != nil {
		if pn.BootstrapKubeconfig != "" {
			return nil, nil, fmt.Errorf("perNodeCertificate.bootstrapKubeconfig %s: %w", path, err)
		}
		return nil, nil, fmt.Errorf("perNodeCertificate: bootstrap credentials: %w", err)
	}
	tune(bootstrap)
	id, err := nodecert.Start(ctx, bootstrap, nodecert.Options{
		NodeName: opts.NodeName, CertDir: pn.CertDir, Duration: pn.CertDuration.Duration, Log: opts.Log,
	})
	if err != nil {
		return nil, nil, err
	}
	if err := id.Wait(ctx, certWaitLog); err != nil {
		id.Stop()
		return nil, nil, err
	}
	cfg, err := id.ClientConfig(ctx)
	if err != nil {
		id.Stop()
		return nil, nil, err
	}
	return tune(cfg), id.Stop, nil
}
