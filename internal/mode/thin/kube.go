package thin

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/polynet-cni/polynet/internal/adapter/apiclient"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// lazyKube connects to the API server on first use. A DEL that finds its
// attachment record never needs the API server, so it never reads credentials or
// fails for want of them; an ADD reads them fresh each time, so a rotated
// ServiceAccount token or certificate just works.
type lazyKube struct {
	conf   *config.PluginConf
	getenv func(string) string
	// serviceAccountDir is where the in-cluster credentials are; empty is where
	// the kubelet mounts them. Tests set it.
	serviceAccountDir string

	once   sync.Once
	client *apiclient.Client
	err    error

	// log reports events that could not be sent; events tracks those being
	// sent, which the process waits for before it exits.
	log    *slog.Logger
	events sync.WaitGroup

	// pools are the ResourceSlices read, by pool name, for this one request.
	poolsMu sync.Mutex
	pools   map[string][]podnet.ResourceSlice
}

// newLazyKube returns nil in delegates-only mode: no kubeconfig in the
// configuration, and not running in a cluster.
func newLazyKube(conf *config.PluginConf, getenv func(string) string) *lazyKube {
	inCluster := getenv("KUBERNETES_SERVICE_HOST") != "" && getenv("KUBERNETES_SERVICE_PORT") != ""
	if conf.Kubeconfig == "" && !inCluster {
		return nil
	}
	return &lazyKube{conf: conf, getenv: getenv}
}

func (l *lazyKube) get() (*apiclient.Client, error) {
	l.once.Do(func() {
		var cfg *apiclient.Config
		if l.conf.Kubeconfig != "" {
			cfg, l.err = apiclient.LoadKubeconfig(l.conf.Kubeconfig)
		} else {
			cfg, l.err = apiclient.InCluster{Getenv: l.getenv, ServiceAccountDir: l.serviceAccountDir}.Config()
		}
		if l.err != nil {
			l.err = fmt.Errorf("kubernetes credentials: %w", l.err)
			return
		}
		l.client, l.err = apiclient.New(cfg, l.conf.APITimeout.Duration, l.conf.APIRetryBudget.Duration)
		if l.err == nil {
			l.client.Host, _ = os.Hostname()
		}
	})
	return l.client, l.err
}

// Pod reads the pod live, as every read of the thin plugin is: ref.UID needs no
// re-read.
func (l *lazyKube) Pod(ctx context.Context, ref podnet.PodRef) (*podnet.Pod, error) {
	c, err := l.get()
	if err != nil {
		return nil, err
	}
	return c.Pod(ctx, ref.Namespace, ref.Name)
}

func (l *lazyKube) NAD(ctx context.Context, namespace, name string) (*podnet.NAD, error) {
	c, err := l.get()
	if err != nil {
		return nil, err
	}
	return c.NAD(ctx, namespace, name)
}

// Claim reads a ResourceClaim of the pod's namespace live.
func (l *lazyKube) Claim(ctx context.Context, pod podnet.PodRef, name string) (*podnet.Claim, error) {
	c, err := l.get()
	if err != nil {
		return nil, err
	}
	return c.Claim(ctx, pod.Namespace, name)
}

// Slices returns a pool's ResourceSlices, from one live list of the pools of
// that name: a claim's devices of several drivers in pools named alike (after
// the node) cost one request.
func (l *lazyKube) Slices(ctx context.Context, driver, pool string, _ []string) ([]podnet.ResourceSlice, error) {
	c, err := l.get()
	if err != nil {
		return nil, err
	}
	l.poolsMu.Lock()
	defer l.poolsMu.Unlock()
	all, ok := l.pools[pool]
	if !ok {
		if all, err = c.PoolSlices(ctx, pool); err != nil {
			return nil, err
		}
		if l.pools == nil {
			l.pools = map[string][]podnet.ResourceSlice{}
		}
		l.pools[pool] = all
	}
	var out []podnet.ResourceSlice
	for _, s := range all {
		if s.Driver == driver {
			out = append(out, s)
		}
	}
	return out, nil
}

func (l *lazyKube) PatchNetworkStatus(ctx context.Context, ref podnet.PodRef, value string) error {
	c, err := l.get()
	if err != nil {
		return err
	}
	return c.PatchNetworkStatus(ctx, ref, value)
}

// Event sends the event in the background: an ADD does not wait a round trip
// to the API server per interface before its next delegate runs. The handler
// waits for every event before the process exits (waitEvents); each is bounded
// by the client's timeout and retry budget, and a failure is logged, as the
// engine logs one it is told of.
func (l *lazyKube) Event(ctx context.Context, ref podnet.PodRef, eventType, reason, message string) error {
	c, err := l.get()
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	l.events.Go(func() {
		if err := c.Event(ctx, ref, eventType, reason, message); err != nil && l.log != nil {
			l.log.Warn("recording event failed", "reason", reason, "error", err)
		}
	})
	return nil
}

// waitEvents waits for the events being sent.
func (l *lazyKube) waitEvents() { l.events.Wait() }

func (l *lazyKube) Ready(ctx context.Context) error {
	c, err := l.get()
	if err != nil {
		return err
	}
	return c.Ready(ctx)
}
