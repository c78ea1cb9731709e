package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"k8s.io/client-go/rest"

	"github.com/polynet-cni/polynet/internal/adapter/apicache"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/engine/attach"
)

// startClaims starts the caches of ResourceClaims and of the node's
// ResourceSlices, whose network devices the engine offers to networks as it
// does device plugins'. On an API server that does not serve
// resource.k8s.io/v1 (a cluster older than 1.34, or one that turned it off)
// the daemon goes without them: it returns nil and says so once.
func startClaims(ctx context.Context, cfg *rest.Config, conf *config.DaemonConf, nodeName string, log *slog.Logger) (attach.ClaimSource, error) {
	claims, err := apicache.NewClaims(cfg, nodeName)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	served, err := claims.Start(ctx, conf.CacheSyncTimeout.Duration)
	if err != nil {
		return nil, err
	}
	if !served {
		log.Info("the API server does not serve " + apicache.DRAGroupVersion + " ResourceClaims and ResourceSlices: devices come from device plugins alone")
		return nil, nil
	}
	return claims, nil
}
