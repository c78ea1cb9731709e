package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/engine/attach"
	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
	"github.com/polynet-cni/polynet/internal/selection"
)

// Reasons of the events dynamic networks record, besides ReasonAddedInterface,
// ReasonInvalidSelection, ReasonNoNetworkFound and ReasonAttachFailed.
const (
	ReasonRemovedInterface = "RemovedInterface"
	ReasonDetachFailed     = "NetworkDetachmentFailed"
)

// Reconciled is what one reconciliation changed in a sandbox: the interfaces
// added and removed.
type Reconciled struct {
	Added, Removed []string
}

// Reconcile brings a running sandbox's attachments to its pod's networks
// annotation (dynamic networks): it removes the attachments of elements no
// longer there, then adds the elements that are new, updates the sandbox's
// record and the pod's network-status, and records an event per change. It
// holds the sandbox's lock, as ADD and DEL do, so it never runs beside the
// sandbox's creation or deletion; a sandbox without a record (being created,
// gone, or of another pod) is left alone.
//
// Each change stands alone: a network that fails to attach is rolled back, as
// if never asked for, and the others are made; the error returned says what
// failed, for the caller to try again later. An annotation that does not parse
// changes nothing: it is reported on the pod and returned as a
// *SelectionError, which trying again cannot mend. The cluster network,
// default networks and the auxiliary chain are never touched (attach.Diff).
func (e *Engine) Reconcile(ctx context.Context, conf *config.PluginConf, containerID string, pod *podnet.Pod) (Reconciled, error) {
	log := e.Log.With("command", "reconcile", "containerID", containerID, "pod", pod.Ref().String())
	var done Reconciled
	unlock, err := e.lockCommand(containerID)
	if err != nil {
		return done, fmt.Errorf("sandbox %s of pod %s: %w", containerID, pod.Ref(), err)
	}
	defer unlock()
	rec, err := e.Records.Load(containerID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return done, nil
	case err != nil:
		return done, fmt.Errorf("sandbox %s of pod %s: %w", containerID, pod.Ref(), err)
	}
	if !rec.Pod.Is(pod) || pod.Deleting {
		// Another pod's sandbox, or one about to be deleted, whose DEL
		// tears everything down anyway.
		return done, nil
	}
	if rec.NetNS == "" || e.Files.Exists(rec.NetNS) != nil {
		// The sandbox's network namespace is gone (a node rebooted before the
		// runtime's DEL): there is nothing to plug into, and DEL cleans up.
		log.Info("the sandbox's network namespace is gone; leaving it to DEL", "netns", rec.NetNS)
		return done, nil
	}
	// Nothing changed for the cached pod: no request to the API server, but
	// for a network-status that a failed write left behind the interfaces.
	if _, change, err := e.desired(ctx, log, rec, pod); err != nil || change.Empty() {
		if err == nil && statusStale(rec, pod) {
			err = e.repairStatus(ctx, log, rec, pod)
		}
		return done, err
	}
	// The pod may come from a cache that has not seen the latest network-status
	// (this sandbox's ADD wrote it a moment ago) or annotation: what is written
	// next replaces the list, so it starts from the pod as it is now.
	if pod, err = e.livePod(ctx, pod); err != nil || pod == nil || !rec.Pod.Is(pod) {
		return done, err
	}
	elems, change, err := e.desired(ctx, log, rec, pod)
	if err != nil || change.Empty() {
		return done, err
	}
	log.Info("reconciling the pod's networks", "change", change.String())
	req := &request.Request{
		Command: request.Add, ContainerID: rec.ContainerID, NetNS: rec.NetNS, IfName: rec.IfName, Pod: rec.Pod,
		Args: runtimeArgs(rec),
	}
	sb := podnet.Sandbox{ContainerID: rec.ContainerID, NetNS: rec.NetNS}
	var errs []error
	removed, err := e.unplug(ctx, log, rec, pod, change.Remove)
	if err != nil {
		errs = append(errs, err)
	}
	in := attach.Input{Conf: conf, Req: req, Pod: pod, NADs: e.Kube, Devices: e.Devices, Confs: e.Confs, Selections: elems}
	results := map[string]types.Result{}
	planned, err := attach.Plug(ctx, in, rec.Attachments, change.Add)
	if err != nil {
		e.resolveFailed(ctx, log, pod, err)
		errs = append(errs, fmt.Errorf("pod %s: %w", pod.Ref(), err))
		planned = nil
	}
	for _, p := range planned {
		res, err := e.plug(ctx, log, rec, sb, pod, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		results[p.IfName] = res
	}
	for _, a := range removed {
		done.Removed = append(done.Removed, a.IfName)
	}
	for _, p := range planned {
		if _, ok := results[p.IfName]; ok {
			done.Added = append(done.Added, p.IfName)
		}
	}
	if len(done.Added)+len(done.Removed) > 0 {
		if err := e.updateStatus(ctx, log, pod, removed, planned, results); err != nil {
			// Tried again with the rest: the next reconciliation finds the
			// interfaces in place and the status behind them (repairStatus).
			errs = append(errs, err)
		}
	}
	return done, errors.Join(errs...)
}

// desired parses the pod's networks annotation and compares it with the
// record. An annotation that does not parse is reported on the pod.
func (e *Engine) desired(ctx context.Context, log *slog.Logger, rec *podnet.Record, pod *podnet.Pod) ([]selection.Element, attach.Change, error) {
	elems, err := selection.Parse(pod.Annotations[selection.NetworksAnnotation], pod.Namespace)
	if err != nil {
		e.event(ctx, log, pod, EventWarning, ReasonInvalidSelection,
			fmt.Sprintf("%v; no interface is added or removed until the annotation is valid", err))
		return nil, attach.Change{}, &SelectionError{Pod: pod.Ref(), Err: err}
	}
	return elems, attach.Diff(rec.Attachments, elems), nil
}

// LivePods is implemented by a Kubernetes adapter that serves pods from a
// cache: LivePod reads the pod from the API server itself.
type LivePods interface {
	LivePod(ctx context.Context, ref podnet.PodRef) (*podnet.Pod, error)
}

// livePod re-reads pod from the API server when the adapter serves a cache;
// nil without error when the pod is gone.
func (e *Engine) livePod(ctx context.Context, pod *podnet.Pod) (*podnet.Pod, error) {
	live, ok := e.Kube.(LivePods)
	if !ok {
		return pod, nil
	}
	fresh, err := live.LivePod(ctx, pod.Ref())
	var nf *podnet.NotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", pod.Ref(), err)
	}
	return fresh, nil
}

// runtimeArgs are the CNI_ARGS the runtime gave the sandbox's ADD: the
// attachments' own, which are those (attach.CNIArgs) for every attachment.
func runtimeArgs(rec *podnet.Record) request.Args {
	for _, a := range rec.Attachments {
		if a.CNIArgs != nil {
			return request.Args(slices.Clone(a.CNIArgs))
		}
	}
	return request.Args{{"K8S_POD_NAMESPACE", rec.Pod.Namespace}, {"K8S_POD_NAME", rec.Pod.Name}, {"K8S_POD_UID", rec.Pod.UID}}
}

// unplug detaches attachments and drops each that detached from the record.
// One that fails stays recorded, so that trying again, or the sandbox's DEL,
// still knows what to undo.
func (e *Engine) unplug(ctx context.Context, log *slog.Logger, rec *podnet.Record, pod *podnet.Pod, atts []podnet.Attachment) ([]podnet.Attachment, error) {
	ctx, cancel := e.cleanupContext(ctx)
	defer cancel()
	sb := podnet.Sandbox{ContainerID: rec.ContainerID, NetNS: rec.NetNS}
	var removed []podnet.Attachment
	var errs []error
	for _, a := range atts {
		if failed := e.detach(ctx, log, sb, []podnet.Attachment{a}); len(failed) > 0 {
			err := &DetachError{ContainerID: rec.ContainerID, Failed: failed}
			e.event(ctx, log, pod, EventWarning, ReasonDetachFailed, fmt.Sprintf("Remove %s from %s: %v", a.IfName, a.Network, err))
			errs = append(errs, err)
			continue
		}
		rec.Drop(a.IfName)
		if err := e.Records.Save(rec); err != nil {
			errs = append(errs, fmt.Errorf("sandbox %s: recording the removal of %s: %w", rec.ContainerID, a.IfName, err))
		}
		removed = append(removed, a)
		log.Info("detached", "network", a.Network, "interface", a.IfName)
		e.event(ctx, log, pod, EventNormal, ReasonRemovedInterface, fmt.Sprintf("Remove %s from %s", a.IfName, a.Network))
	}
	return removed, errors.Join(errs...)
}

// plug attaches one network to the running sandbox. It joins the record before
// its delegate runs, so a crash or the sandbox's DEL meanwhile still tears it
// down; a failure rolls it back and drops it from the record again.
func (e *Engine) plug(ctx context.Context, log *slog.Logger, rec *podnet.Record, sb podnet.Sandbox, pod *podnet.Pod, p attach.Planned) (types.Result, error) {
	rec.Attachments = append(rec.Attachments, p.Attachment)
	if err := e.Records.Save(rec); err != nil {
		rec.Attachments = rec.Attachments[:len(rec.Attachments)-1]
		return nil, fmt.Errorf("sandbox %s: recording %s before attaching it: %w", rec.ContainerID, p.IfName, err)
	}
	res, err := e.addOne(ctx, sb, p)
	if err == nil {
		if res, err = res.GetAsVersion(rec.CNIVersion); err != nil {
			err = &ResultVersionError{Version: rec.CNIVersion, Err: err}
		}
	}
	if err == nil {
		log.Info("attached", "network", p.Network, "interface", p.IfName)
		e.event(ctx, log, pod, EventNormal, ReasonAddedInterface, addedMessage(p, res))
		return res, nil
	}
	aerr := &AttachError{Pod: pod.Ref(), Network: p.Network, IfName: p.IfName, Err: err}
	cctx, cancel := e.cleanupContext(ctx)
	defer cancel()
	if failed := e.detach(cctx, log, sb, []podnet.Attachment{p.Attachment}); len(failed) > 0 {
		// Kept in the record: the sandbox's DEL tries again.
		aerr.Rollback = errors.Join(failed...)
	} else {
		rec.Drop(p.IfName)
		if serr := e.Records.Save(rec); serr != nil {
			log.Error("dropping a rolled back attachment from the record", "interface", p.IfName, "error", serr)
		}
	}
	log.Error("attaching failed", "network", p.Network, "interface", p.IfName, "error", aerr)
	e.event(ctx, log, pod, EventWarning, ReasonAttachFailed, aerr.Error())
	return nil, aerr
}

// updateStatus rewrites the pod's network-status after a reconciliation: the
// entries of removed interfaces go, entries of added ones come, the others stay
// as they were. A failed write is reported on the pod and returned: the
// interfaces are there, and trying again repairs the status (repairStatus).
func (e *Engine) updateStatus(ctx context.Context, log *slog.Logger, pod *podnet.Pod, removed []podnet.Attachment, planned []attach.Planned, results map[string]types.Result) error {
	if e.Kube == nil {
		return nil
	}
	entries, err := netstatus.Decode(pod.Annotations[netstatus.Annotation])
	if err != nil {
		log.Warn("the pod's network-status does not parse; writing the changed entries over it", "error", err)
		entries = nil
	}
	entries = slices.DeleteFunc(entries, func(en netstatus.Entry) bool {
		return slices.ContainsFunc(removed, func(a podnet.Attachment) bool { return a.IfName == en.Interface && a.Network == en.Name })
	})
	for _, p := range planned {
		res, ok := results[p.IfName]
		if !ok {
			continue
		}
		entries = slices.DeleteFunc(entries, func(en netstatus.Entry) bool { return en.Interface == p.IfName })
		entries = append(entries, e.statusEntry(ctx, log, pod, p.Attachment, res))
	}
	return e.writeStatus(ctx, log, pod, entries)
}

// writeStatus patches the pod's network-status; a failure is reported on the
// pod and returned.
func (e *Engine) writeStatus(ctx context.Context, log *slog.Logger, pod *podnet.Pod, entries []netstatus.Entry) error {
	value, err := netstatus.Encode(entries)
	if err == nil {
		err = e.Kube.PatchNetworkStatus(ctx, pod.Ref(), value)
	}
	if err != nil {
		log.Error("writing network-status failed", "error", err)
		e.event(ctx, log, pod, EventWarning, ReasonStatusFailed, "writing "+netstatus.Annotation+": "+err.Error())
		return fmt.Errorf("pod %s: writing %s: %w", pod.Ref(), netstatus.Annotation, err)
	}
	return nil
}

// statusStale reports whether the pod's network-status disagrees with the
// sandbox's record about the interfaces made for the annotation: one the
// record has is missing, or one it no longer has is listed. A pod without a
// network-status yet (its ADD's write not seen by the cache) is not stale:
// the status is ADD's to write.
func statusStale(rec *podnet.Record, pod *podnet.Pod) bool {
	entries, err := netstatus.Decode(pod.Annotations[netstatus.Annotation])
	if err != nil || len(entries) == 0 {
		return false
	}
	listed := map[string]bool{}
	for _, en := range entries {
		listed[en.Interface] = true
	}
	recorded := map[string]bool{}
	for _, a := range rec.Attachments {
		recorded[a.IfName] = true
		if a.Requested != nil && !listed[a.IfName] {
			return true
		}
	}
	for _, en := range entries {
		if en.Interface != "" && !recorded[en.Interface] {
			return true
		}
	}
	return false
}

// repairStatus rewrites a network-status a failed write left behind the
// sandbox (a daemon that stopped between an interface and its status, an API
// server that refused the write): from the pod as it is now, entries of
// interfaces the record no longer has go, and entries of interfaces made for
// the annotation come from their results in the delegates' cache.
func (e *Engine) repairStatus(ctx context.Context, log *slog.Logger, rec *podnet.Record, pod *podnet.Pod) error {
	pod, err := e.livePod(ctx, pod)
	if err != nil || pod == nil || !rec.Pod.Is(pod) || !statusStale(rec, pod) {
		return err
	}
	entries, _ := netstatus.Decode(pod.Annotations[netstatus.Annotation])
	recorded := map[string]bool{}
	for _, a := range rec.Attachments {
		recorded[a.IfName] = true
	}
	entries = slices.DeleteFunc(entries, func(en netstatus.Entry) bool { return en.Interface != "" && !recorded[en.Interface] })
	sb := podnet.Sandbox{ContainerID: rec.ContainerID, NetNS: rec.NetNS}
	for _, a := range rec.Attachments {
		if a.Requested == nil || slices.ContainsFunc(entries, func(en netstatus.Entry) bool { return en.Interface == a.IfName }) {
			continue
		}
		res, err := e.Delegates.Result(sb, a)
		if err != nil {
			log.Warn("the cached result of an attachment cannot be read; its network-status entry names it alone", "interface", a.IfName, "error", err)
		}
		entries = append(entries, e.statusEntry(ctx, log, pod, a, res))
	}
	log.Info("repairing the pod's network-status", "entries", len(entries))
	return e.writeStatus(ctx, log, pod, entries)
}
