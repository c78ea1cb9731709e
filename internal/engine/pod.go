package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/engine/attach"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
	"github.com/polynet-cni/polynet/internal/selection"
)

// lookupPod reads the request's pod. It returns nil without error when there is
// no Kubernetes client, no pod in CNI_ARGS, or no such pod. A pod whose UID is not
// the sandbox's is refused, except a static pod, whose API object is a mirror with
// a UID of its own.
func (e *Engine) lookupPod(ctx context.Context, req *request.Request) (*podnet.Pod, error) {
	if e.Kube == nil || !req.HasPod() {
		return nil, nil
	}
	pod, err := e.Kube.Pod(ctx, req.Pod)
	var nf *podnet.NotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", req.Pod, err)
	}
	if !req.Pod.Is(pod) {
		return nil, &PodUIDMismatchError{Pod: req.Pod, APIUID: pod.UID, Sandbox: req.Pod.UID}
	}
	return pod, nil
}

// input gathers what attach.Resolve needs, parsing the pod's annotations. An
// ignored invalid annotation is reported on the pod when report is set (ADD), not
// during a DEL's reconstruction.
func (e *Engine) input(ctx context.Context, log *slog.Logger, req *request.Request, conf *config.PluginConf, pod *podnet.Pod, report bool) (attach.Input, error) {
	in := attach.Input{Conf: conf, Req: req, Pod: pod, Devices: e.Devices, Confs: e.Confs}
	if e.Kube != nil {
		in.NADs = e.Kube
	}
	if pod == nil {
		return in, nil
	}
	if v := pod.Annotations[selection.DefaultNetworkAnnotation]; v != "" {
		elems, err := selection.Parse(v, conf.MultusNamespace)
		if err == nil && len(elems) != 1 {
			err = fmt.Errorf("it names %d networks; exactly one is allowed", len(elems))
		}
		if err != nil {
			return in, &SelectionError{Pod: req.Pod, Err: fmt.Errorf("annotation %s: %w", selection.DefaultNetworkAnnotation, err)}
		}
		in.DefaultNetwork = &elems[0]
	}
	elems, err := selection.Parse(pod.Annotations[selection.NetworksAnnotation], pod.Namespace)
	var invalid *selection.InvalidError
	switch {
	case err == nil:
		in.Selections = elems
	case errors.As(err, &invalid) && !conf.StrictNetworkSelection:
		// The standard says an invalid annotation SHALL be ignored (R-4.1.2.1.3 and
		// its siblings); upstream fails the ADD instead (a GAP). We ignore it as a
		// whole, loudly: a Warning event on the pod names the field, so the pod's
		// owner sees why no extra interface came. strictNetworkSelection restores
		// upstream's failure.
		log.Warn("ignoring the invalid networks annotation", "error", err)
		if report {
			e.event(ctx, log, pod, EventWarning, ReasonInvalidSelection,
				fmt.Sprintf("%v; the annotation is ignored, no additional network is attached", err))
		}
	default:
		return in, &SelectionError{Pod: req.Pod, Err: err}
	}
	return in, nil
}

// waitReady waits, bounded, for the readiness indicator file; ADD only.
func (e *Engine) waitReady(ctx context.Context, conf *config.PluginConf) error {
	path := conf.ReadinessIndicatorFile
	if path == "" {
		return nil
	}
	timeout := conf.ReadinessIndicatorTimeout.Duration
	deadline := time.Now().Add(timeout)
	for {
		if e.Files.Exists(path) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return &NotReadyError{Path: path, Waited: timeout.String()}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for readiness indicator %s: %w", path, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
