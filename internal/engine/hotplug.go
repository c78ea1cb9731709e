package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/engine/attach"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
	"github.com/polynet-cni/polynet/internal/selection"
)

// DelegateAdd attaches one more network to a running pod, for a hot-plug
// controller (upstream's /delegate endpoint, which multus-dynamic-networks-
// controller calls). Unlike upstream, the attachment joins the sandbox's record
// before its delegate runs, so the sandbox's own DEL tears it down too and a pod
// deleted before its controller unplugs leaks no address. A name used by another
// attachment of the sandbox fails (R-4.1.2.1.5). The controller owns the
// network-status of what it plugs, so it is not written here.
func (e *Engine) DelegateAdd(ctx context.Context, req *request.Request, conf *config.PluginConf, cfg []byte, sel *selection.Element) (types.Result, error) {
	pod, err := e.lookupPod(ctx, req)
	if err != nil {
		return nil, err
	}
	p, err := attach.Single(attach.Input{Conf: conf, Req: req, Pod: pod}, cfg, sel, req.IfName)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", req.Pod, err)
	}
	unlock, err := e.lockCommand(req.ContainerID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rec, err := e.Records.Load(req.ContainerID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		rec = &podnet.Record{ContainerID: req.ContainerID, NetNS: req.NetNS, Pod: req.Pod, CNIVersion: conf.CNIVersion, Created: e.now().UTC()}
	case err != nil:
		return nil, err
	}
	if i := slices.IndexFunc(rec.Attachments, func(a podnet.Attachment) bool { return a.IfName == p.IfName }); i >= 0 {
		return nil, &attach.InterfaceConflictError{Network: p.Network, IfName: p.IfName, Previous: rec.Attachments[i].Network}
	}
	rec.Attachments = append(rec.Attachments, p.Attachment)
	if err := e.Records.Save(rec); err != nil {
		return nil, err
	}
	sb := podnet.Sandbox{ContainerID: req.ContainerID, NetNS: req.NetNS}
	res, err := e.Delegates.Add(ctx, sb, p.Attachment)
	switch {
	case err == nil && ctx.Err() != nil:
		// Nobody receives the result; as in ADD, it is undone (attachAll).
		err = fmt.Errorf("the caller went away: %w", ctx.Err())
	case err == nil:
		if res, err = res.GetAsVersion(conf.CNIVersion); err != nil {
			err = &ResultVersionError{Version: conf.CNIVersion, Err: err}
		}
	}
	if err != nil {
		aerr := &AttachError{Pod: req.Pod, Network: p.Network, IfName: p.IfName, Err: err}
		// The rollback runs to the end whatever the caller does, as ADD's.
		ctx, cancel := e.cleanupContext(ctx)
		defer cancel()
		if failed := e.detach(ctx, e.Log, sb, []podnet.Attachment{p.Attachment}); len(failed) > 0 {
			aerr.Rollback = errors.Join(failed...)
			return nil, aerr
		}
		return nil, errors.Join(aerr, e.forget(req.ContainerID, p.IfName))
	}
	return res, nil
}

// DelegateDel detaches a hot-plugged network and drops it from the record. Like
// DEL, it runs to the end on a context of its own and holds the sandbox's lock
// and the records' lock shared.
func (e *Engine) DelegateDel(ctx context.Context, req *request.Request, conf *config.PluginConf, cfg []byte) error {
	p, err := attach.Single(attach.Input{Conf: conf, Req: req}, cfg, nil, req.IfName)
	if err != nil {
		return fmt.Errorf("pod %s: %w", req.Pod, err)
	}
	ctx, cancel := e.cleanupContext(ctx)
	defer cancel()
	unlock, err := e.lockCommand(req.ContainerID)
	if err != nil {
		return err
	}
	defer unlock()
	sb := podnet.Sandbox{ContainerID: req.ContainerID, NetNS: req.NetNS}
	if rec, err := e.Records.Load(req.ContainerID); err == nil {
		// The record's copy is what ADD ran; DEL gives the delegate the same.
		if i := slices.IndexFunc(rec.Attachments, func(a podnet.Attachment) bool { return a.IfName == p.IfName }); i >= 0 {
			p.Attachment = rec.Attachments[i]
		}
	}
	if failed := e.detach(ctx, e.Log, sb, []podnet.Attachment{p.Attachment}); len(failed) > 0 {
		return &DetachError{ContainerID: req.ContainerID, Failed: failed}
	}
	return e.forget(req.ContainerID, p.IfName)
}

// forget drops one attachment from a sandbox's record; the record goes with its
// last attachment.
func (e *Engine) forget(containerID, ifName string) error {
	rec, err := e.Records.Load(containerID)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	rec.Drop(ifName)
	if len(rec.Attachments) == 0 {
		return e.Records.Remove(containerID)
	}
	return e.Records.Save(rec)
}
