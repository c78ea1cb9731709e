package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/polynet-cni/polynet/internal/adapter/delegate"
	"github.com/polynet-cni/polynet/internal/metrics"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
)

// instrumented measures each attachment's delegate calls: latency per command and
// network, failures per plugin type.
type instrumented struct {
	*delegate.Runner
	metrics *metrics.Metrics
}

func (i instrumented) observe(command, network string, start time.Time, err error) {
	if i.metrics == nil {
		return
	}
	i.metrics.NetworkLatency.WithLabelValues(command, network).Observe(time.Since(start).Seconds())
	var de *delegate.Error
	if errors.As(err, &de) {
		plugins := de.Plugins
		if len(plugins) == 0 {
			plugins = []string{"unknown"}
		}
		for _, p := range plugins {
			i.metrics.DelegateFailures.WithLabelValues(p).Inc()
		}
	}
}

func (i instrumented) Add(ctx context.Context, sb podnet.Sandbox, a podnet.Attachment) (types.Result, error) {
	start := time.Now()
	res, err := i.Runner.Add(ctx, sb, a)
	i.observe(request.Add, a.Network, start, err)
	return res, err
}

func (i instrumented) Del(ctx context.Context, sb podnet.Sandbox, a podnet.Attachment) error {
	start := time.Now()
	err := i.Runner.Del(ctx, sb, a)
	i.observe(request.Del, a.Network, start, err)
	return err
}

func (i instrumented) Check(ctx context.Context, sb podnet.Sandbox, a podnet.Attachment) error {
	start := time.Now()
	err := i.Runner.Check(ctx, sb, a)
	i.observe(request.Check, a.Network, start, err)
	return err
}
