package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"

	"github.com/polynet-cni/polynet/internal/adapter/apicache"
	"github.com/polynet-cni/polynet/internal/adapter/store"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/engine"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
)

// Retry bounds of dynamic networks: a pod whose change fails is tried again
// after 2 s, 4 s, ... up to 2 min apart, at most maxReconcileRetries times;
// then an event says the daemon gave up, until the annotation changes again
// or the daemon restarts.
const (
	reconcileBaseDelay  = 2 * time.Second
	reconcileMaxDelay   = 2 * time.Minute
	maxReconcileRetries = 8
	reconcileWorkers    = 2
)

// dynamicNetworks follows the networks annotation of the node's running pods
// (daemon-config dynamicNetworks): each pod whose annotation changed, and each
// pod once when the daemon starts, is reconciled with its sandbox's record by
// the engine (engine.Reconcile). Pods are queued by name, so one pod is
// reconciled by one worker at a time, and each sandbox under the same lock as
// the socket's commands.
type dynamicNetworks struct {
	pods    cachedPods
	queue   workqueue.TypedRateLimitingInterface[podnet.PodRef]
	index   sandboxIndex
	log     *slog.Logger
	retries int
	// sandbox reconciles one sandbox of a pod.
	sandbox func(ctx context.Context, sb indexed, pod *podnet.Pod) error
}

// cachedPods is what dynamic networks read of the pod cache (package
// apicache), and how they report giving up.
type cachedPods interface {
	CachedPod(ref podnet.PodRef) *podnet.Pod
	Event(ctx context.Context, ref podnet.PodRef, eventType, reason, message string) error
}

func newDynamicNetworks(d *dispatcher, c *apicache.Cache, log *slog.Logger) *dynamicNetworks {
	n := newReconciler(c, log, reconcileBaseDelay, reconcileMaxDelay, maxReconcileRetries)
	n.sandbox = func(ctx context.Context, sb indexed, pod *podnet.Pod) error {
		return d.reconcileSandbox(ctx, n.log, sb, pod)
	}
	return n
}

// newReconciler is the queue and its bounds, without what reconciles a
// sandbox.
func newReconciler(pods cachedPods, log *slog.Logger, base, maxDelay time.Duration, retries int) *dynamicNetworks {
	limiter := workqueue.NewTypedItemExponentialFailureRateLimiter[podnet.PodRef](base, maxDelay)
	return &dynamicNetworks{
		pods: pods, log: log.With("component", "dynamicNetworks"), retries: retries,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[podnet.PodRef]{Name: "dynamicNetworks"}),
	}
}

// enqueue queues a pod by namespace and name: the UID is looked up again when
// it is reconciled.
func (n *dynamicNetworks) enqueue(ref podnet.PodRef) {
	n.queue.Add(podnet.PodRef{Namespace: ref.Namespace, Name: ref.Name})
}

// load fills the index of sandboxes from the records on disk; the socket's
// commands keep it current afterwards.
func (n *dynamicNetworks) load(cniDir string) error {
	st := store.New(cniDir)
	ids, err := st.List()
	if err != nil {
		return fmt.Errorf("dynamic networks: listing attachment records: %w", err)
	}
	for _, id := range ids {
		rec, err := st.Load(id)
		if err != nil {
			n.log.Warn("skipping an attachment record that cannot be read", "containerID", id, "error", err)
			continue
		}
		n.index.put(rec.ContainerID, rec.Pod, rec.CNIVersion, nil, nil)
	}
	return nil
}

// run reconciles queued pods until ctx ends.
func (n *dynamicNetworks) run(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		n.queue.ShutDown()
	}()
	var wg sync.WaitGroup
	for range reconcileWorkers {
		wg.Go(func() {
			for n.next(ctx) {
			}
		})
	}
	wg.Wait()
	return nil
}

// next reconciles one queued pod; false once the queue is shut down.
func (n *dynamicNetworks) next(ctx context.Context) bool {
	ref, quit := n.queue.Get()
	if quit {
		return false
	}
	defer n.queue.Done(ref)
	err := n.reconcile(ctx, ref)
	var serr *engine.SelectionError
	switch {
	case err == nil || errors.As(err, &serr) || ctx.Err() != nil:
		// Done, or nothing that trying again mends: the annotation changes
		// first, and that queues the pod again.
		n.queue.Forget(ref)
	case n.queue.NumRequeues(ref) < n.retries:
		n.log.Warn("reconciling the pod's networks failed; trying again later", "pod", ref.String(),
			"attempt", n.queue.NumRequeues(ref)+1, "error", err)
		n.queue.AddRateLimited(ref)
	default:
		n.log.Error("reconciling the pod's networks failed; giving up", "pod", ref.String(), "error", err)
		n.queue.Forget(ref)
		if pod := n.pods.CachedPod(ref); pod != nil {
			_ = n.pods.Event(ctx, pod.Ref(), engine.EventWarning, engine.ReasonAttachFailed,
				fmt.Sprintf("gave up changing the pod's networks after %d attempts: %v; the next change of %s tries again",
					n.retries+1, err, "k8s.v1.cni.cncf.io/networks"))
		}
	}
	return true
}

// reconcile reconciles each sandbox the pod has on this node (one, but for a
// moment while a sandbox is replaced).
func (n *dynamicNetworks) reconcile(ctx context.Context, ref podnet.PodRef) error {
	pod := n.pods.CachedPod(ref)
	if pod == nil {
		return nil
	}
	var errs []error
	for _, sb := range n.index.of(pod) {
		if err := n.sandbox(ctx, sb, pod); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// reconcileSandbox runs the engine's Reconcile on one sandbox, bounded as a
// request is, under the sandbox's lock.
func (d *dispatcher) reconcileSandbox(ctx context.Context, log *slog.Logger, sb indexed, pod *podnet.Pod) error {
	ctx, cancel := context.WithTimeout(ctx, d.conf.RequestTimeout.Duration)
	defer cancel()
	conf := sb.conf
	if conf == nil {
		var err error
		if conf, err = d.hotplugConf(sb.cniVersion); err != nil {
			return err
		}
	}
	defer d.locks.lock(sb.containerID)()
	start := time.Now()
	done, err := d.engine(conf, &request.Request{Path: sb.path}).Reconcile(ctx, conf, sb.containerID, pod)
	if d.metrics != nil {
		d.metrics.ObserveDynamic(len(done.Added), len(done.Removed), err != nil)
	}
	if len(done.Added)+len(done.Removed) > 0 {
		log.Info("reconciled the pod's networks", "pod", pod.Ref().String(), "containerID", sb.containerID,
			"added", done.Added, "removed", done.Removed, "took", time.Since(start))
	}
	return err
}

// hotplugConf is the plugin configuration networks are added to a sandbox
// added before the daemon started with: the daemon's keys (namespaceIsolation, multusNamespace, binDir, cniDir...) over
// a configuration of the sandbox's version. Its cluster network is never
// resolved: dynamic networks never touch it.
func (d *dispatcher) hotplugConf(cniVersion string) (*config.PluginConf, error) {
	if cniVersion == "" {
		cniVersion = "1.0.0"
	}
	base, err := json.Marshal(map[string]string{
		"cniVersion": cniVersion, "name": "multus-dynamic-networks", "type": "multus-shim", "clusterNetwork": "unused",
	})
	if err != nil {
		return nil, err
	}
	merged, err := d.conf.Overlay(base)
	if err != nil {
		return nil, err
	}
	return config.ParsePlugin(merged)
}

// sandboxIndex maps the node's sandboxes to their pods, so that a pod's change
// finds its sandbox without reading every record.
type sandboxIndex struct {
	mu        sync.Mutex
	sandboxes map[string]indexed
}

type indexed struct {
	containerID string
	pod         podnet.PodRef
	cniVersion  string
	// conf is the configuration the sandbox was added with, when this daemon
	// added it: networks are added to it as its ADD would have added them
	// (the shim's keys too, and its cniDir, where its record is).
	conf *config.PluginConf
	// path is the runtime's CNI_PATH of its ADD, searched after binDir as
	// ADD searched it; unknown for a sandbox added before the daemon started.
	path []string
}

func (x *sandboxIndex) put(containerID string, pod podnet.PodRef, cniVersion string, conf *config.PluginConf, path []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.sandboxes == nil {
		x.sandboxes = map[string]indexed{}
	}
	x.sandboxes[containerID] = indexed{containerID: containerID, pod: pod, cniVersion: cniVersion, conf: conf, path: path}
}

func (x *sandboxIndex) remove(containerID string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.sandboxes, containerID)
}

// of returns the sandboxes of pod: its name, and its UID when both are known
// (a static pod's API object is a mirror with a UID of its own).
func (x *sandboxIndex) of(pod *podnet.Pod) []indexed {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []indexed
	for _, sb := range x.sandboxes {
		if sb.pod.Is(pod) {
			out = append(out, sb)
		}
	}
	return out
}
