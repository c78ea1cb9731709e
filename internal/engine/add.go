package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/engine/attach"
	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
)

// Add attaches every network of the pod, the cluster network first, and returns
// the cluster network's result in the configuration's cniVersion.
func (e *Engine) Add(ctx context.Context, req *request.Request, conf *config.PluginConf) (types.Result, error) {
	log := e.Log.With("command", request.Add, "containerID", req.ContainerID, "pod", req.Pod.String())
	if err := e.waitReady(ctx, conf); err != nil {
		return nil, err
	}
	pod, err := e.lookupPod(ctx, req)
	if err != nil {
		return nil, err
	}
	if e.Kube != nil && req.HasPod() && pod == nil {
		// Upstream's behaviour since v4.2.0: the pod was deleted before its sandbox
		// came up, so nothing is attached and no address is spent on it.
		log.Info("pod not found in the API; returning an empty result and attaching nothing")
		return emptyResult(req, conf.CNIVersion)
	}
	in, err := e.input(ctx, log, req, conf, pod, true)
	if err != nil {
		return nil, err
	}
	planned, err := attach.Resolve(ctx, in)
	if err != nil {
		e.resolveFailed(ctx, log, pod, err)
		return nil, fmt.Errorf("pod %s: %w", req.Pod, err)
	}
	unlock, err := e.lockCommand(req.ContainerID)
	if err != nil {
		return nil, fmt.Errorf("pod %s: recording attachments: %w", req.Pod, err)
	}
	defer unlock()
	if err := ctx.Err(); err != nil {
		// The caller went away while the sandbox was busy: attach nothing.
		return nil, fmt.Errorf("pod %s: the caller went away before any network was attached: %w", req.Pod, err)
	}
	rec := &podnet.Record{
		ContainerID: req.ContainerID, IfName: req.IfName, NetNS: req.NetNS, Pod: req.Pod,
		CNIVersion: conf.CNIVersion, Created: e.now().UTC(),
	}
	for _, p := range planned {
		rec.Attachments = append(rec.Attachments, p.Attachment)
	}
	if rec.Pod.UID == "" && pod != nil {
		rec.Pod.UID = pod.UID
	}
	if err := e.Records.Save(rec); err != nil {
		return nil, fmt.Errorf("pod %s: recording attachments before running delegates: %w", req.Pod, err)
	}
	return e.attachRecorded(ctx, log, req, conf, pod, planned)
}

// attachRecorded attaches the recorded attachments, then sets the default
// route, writes network-status and returns the cluster network's result. Any
// failure once the first delegate has run, a late one too, rolls back every
// attachment (R-7.2a): the runtime, told the ADD failed, uses nothing of it.
// Everything that can fail comes before network-status is written, so the
// annotation never describes interfaces that a rollback removed (section 5
// reports the attachments that exist).
func (e *Engine) attachRecorded(ctx context.Context, log *slog.Logger, req *request.Request, conf *config.PluginConf, pod *podnet.Pod, planned []attach.Planned) (types.Result, error) {
	sb := podnet.Sandbox{ContainerID: req.ContainerID, NetNS: req.NetNS}
	results, err := e.attachAll(ctx, log, sb, req, pod, planned)
	if err != nil {
		return nil, err
	}
	fail := func(i int, op string, err error) error {
		return e.rollback(ctx, log, sb, pod, planned, &AttachError{Pod: req.Pod, Network: planned[i].Network, IfName: planned[i].IfName, Op: op, Err: err})
	}
	// Versions before 0.3.0 need an address: a cluster network that returns
	// none cannot be reported in them.
	res, err := results[0].GetAsVersion(conf.CNIVersion)
	if err != nil {
		return nil, fail(0, "returning the result of", &ResultVersionError{Version: conf.CNIVersion, Err: err})
	}
	routes, err := e.applyDefaultRoute(sb, planned)
	if err != nil {
		return nil, fail(routes.owner, "setting the default route of", err)
	}
	if err := e.reportStatus(ctx, log, pod, planned, results, routes); err != nil {
		return nil, fail(0, "writing the network-status of", err)
	}
	return res, nil
}

// attachAll runs each attachment's ADD in order. The first failure stops the ADD
// (R-7.2a) and rolls back every attachment made so far. So does the caller
// going away (the runtime's timeout killed the shim, which ends the daemon's
// request): it kills the delegate running, and one that completes anyway
// counts as failed. The ADD does not go on for a caller that cannot receive
// its result: the runtime saw it fail, and its retry or DEL would wait for the
// sandbox's lock meanwhile.
func (e *Engine) attachAll(ctx context.Context, log *slog.Logger, sb podnet.Sandbox, req *request.Request, pod *podnet.Pod, planned []attach.Planned) ([]types.Result, error) {
	results := make([]types.Result, 0, len(planned))
	for i, p := range planned {
		res, err := e.addOne(ctx, sb, p)
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("the caller went away: %w", ctx.Err())
		}
		if err == nil {
			results = append(results, res)
			if !p.Auxiliary {
				e.event(ctx, log, pod, EventNormal, ReasonAddedInterface, addedMessage(p, res))
			}
			log.Info("attached", "network", p.Network, "interface", p.IfName)
			continue
		}
		aerr := &AttachError{Pod: req.Pod, Network: p.Network, IfName: p.IfName, Err: err}
		return nil, e.rollback(ctx, log, sb, pod, planned[:i+1], aerr)
	}
	return results, nil
}

// addOne runs one attachment's ADD, first giving it the device plugin's
// device-info file when it has a device (D-4.2.1).
func (e *Engine) addOne(ctx context.Context, sb podnet.Sandbox, p attach.Planned) (types.Result, error) {
	if p.DeviceInfoSource != "" && p.DeviceInfoFile != "" {
		if err := e.Files.CopyDeviceInfo(p.DeviceInfoSource, p.DeviceInfoFile); err != nil {
			return nil, err
		}
	}
	return e.Delegates.Add(ctx, sb, p.Attachment)
}

// rollback tears down the attachments made, in reverse, the failed one included
// (its plugins may have allocated before failing), removes the record only if that
// succeeded, reports the failure on the pod, and returns it. It runs to the end
// on a context of its own (cleanupContext), whatever the caller's: nobody
// retries a rollback, and one cut short leaves the pod half attached.
func (e *Engine) rollback(ctx context.Context, log *slog.Logger, sb podnet.Sandbox, pod *podnet.Pod, made []attach.Planned, aerr *AttachError) error {
	ctx, cancel := e.cleanupContext(ctx)
	defer cancel()
	atts := make([]podnet.Attachment, 0, len(made))
	for _, q := range made {
		atts = append(atts, q.Attachment)
	}
	if failed := e.detach(ctx, log, sb, atts); len(failed) > 0 {
		aerr.Rollback = errors.Join(failed...)
	} else if rmErr := e.Records.Remove(sb.ContainerID); rmErr != nil {
		log.Error("removing the attachment record after rollback", "error", rmErr)
	}
	log.Error("attachment failed", "network", aerr.Network, "interface", aerr.IfName, "error", aerr)
	e.event(ctx, log, pod, EventWarning, ReasonAttachFailed, aerr.Error())
	return aerr
}

// resolveFailed reports a resolution failure on the pod, with upstream's reason
// when a network does not exist.
func (e *Engine) resolveFailed(ctx context.Context, log *slog.Logger, pod *podnet.Pod, err error) {
	reason := ReasonAttachFailed
	var nf *attach.NetworkNotFoundError
	if errors.As(err, &nf) {
		reason = ReasonNoNetworkFound
	}
	log.Error("resolving the pod's networks failed", "error", err)
	e.event(ctx, log, pod, EventWarning, reason, err.Error())
}

// reportStatus writes the network-status annotation (section 5): one entry per
// attachment, default true on the cluster network only. A failed
// write is logged and reported, not fatal: the pod's interfaces work, and upstream
// tolerates it the same way since v4.2.0. The one exception is a refusal because
// the pod was recreated under its name: that fails the ADD, which rolls back.
func (e *Engine) reportStatus(ctx context.Context, log *slog.Logger, pod *podnet.Pod, planned []attach.Planned, results []types.Result, routes routeChange) error {
	if e.Kube == nil || pod == nil {
		return nil
	}
	entries := make([]netstatus.Entry, 0, len(planned))
	for i, p := range planned {
		if p.Auxiliary {
			continue
		}
		entries = append(entries, routes.adjust(i, e.statusEntry(ctx, log, pod, p.Attachment, results[i])))
	}
	value, err := netstatus.Encode(entries)
	if err == nil {
		err = e.Kube.PatchNetworkStatus(ctx, pod.Ref(), value)
	}
	if err != nil {
		log.Error("writing network-status failed", "error", err)
		// The pod of that name was deleted and recreated while the ADD ran: the
		// sandbox belongs to a pod that no longer exists, so the ADD fails as a
		// UID mismatch found at the start does, and rolls back.
		var coder cnicode.Coder
		if errors.As(err, &coder) && coder.CNICode() == cnicode.PodUIDMismatch {
			return err
		}
		e.event(ctx, log, pod, EventWarning, ReasonStatusFailed, "writing "+netstatus.Annotation+": "+err.Error())
	}
	return nil
}

// statusEntry is an attachment's network-status entry: from its result (nil
// gives the entry naming it alone), with the device information its chain
// left in the attachment's file (D-6.1.1). What cannot be read (a result of an
// unknown version, device-info that is not JSON or over the bound) is left out
// and reported: the interface works, and the rest of the status still goes.
func (e *Engine) statusEntry(ctx context.Context, log *slog.Logger, pod *podnet.Pod, a podnet.Attachment, res types.Result) netstatus.Entry {
	entry, err := netstatus.FromResult(res, a.Network, a.IfName, a.Default)
	if err != nil {
		log.Error("building network-status entry", "network", a.Network, "error", err)
		entry = netstatus.Entry{Name: a.Network, Interface: a.IfName, Default: a.Default}
	}
	if entry.DeviceInfo, err = e.Files.ReadDeviceInfo(a.DeviceInfoFile); err != nil {
		log.Error("reading device-info", "network", a.Network, "error", err)
		e.event(ctx, log, pod, EventWarning, ReasonStatusFailed, fmt.Sprintf("network %s: device-info left out of %s: %v", a.Network, netstatus.Annotation, err))
	}
	return entry
}

// ResultVersionError says the cluster network's result cannot be given in the
// configuration's CNI version, the one the runtime reads: a result without an
// address has no form before 0.3.0.
type ResultVersionError struct {
	Version string
	Err     error
}

func (e *ResultVersionError) Error() string {
	return fmt.Sprintf("CNI version %s cannot carry it: %v", e.Version, e.Err)
}

func (e *ResultVersionError) Unwrap() error { return e.Err }

// CNICode reports IncompatibleVersion.
func (e *ResultVersionError) CNICode() uint { return cnicode.IncompatibleVersion }

// addedMessage is upstream's AddedInterface text: "Add net1 [10.1.1.5/24] from ns/net".
func addedMessage(p attach.Planned, res types.Result) string {
	var addrs []string
	if cur, err := current.NewResultFromResult(res); err == nil {
		for _, ip := range cur.IPs {
			addrs = append(addrs, ip.Address.String())
		}
	}
	return fmt.Sprintf("Add %s [%s] from %s", p.IfName, strings.Join(addrs, ","), p.Network)
}

// emptyResult is the result for a pod that no longer exists: its interface, with
// the unspecified address, so that every result version can carry it.
func emptyResult(req *request.Request, cniVersion string) (types.Result, error) {
	zero := 0
	res := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{{Name: req.IfName, Sandbox: req.NetNS}},
		IPs: []*current.IPConfig{{
			Interface: &zero,
			Address:   net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)},
			Gateway:   net.IPv4zero,
		}},
	}
	return res.GetAsVersion(cniVersion)
}
