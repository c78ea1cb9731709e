package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"time"

	"github.com/polynet-cni/polynet/internal/cniconf"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/engine/attach"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
)

// Del tears down every attachment of the sandbox, in reverse, from its record, so
// it needs neither the pod, its NADs nor the API server. Every attachment is tried
// even when one fails, and any failure fails the DEL (R-7.2b); the record is
// removed only when all succeeded, so a retried DEL still knows what to undo.
// A missing netns is passed on to the delegates, which treat it as nothing to
// clean in the pod; DEL twice, or DEL of a sandbox never added, succeeds.
//
// The teardown runs to the end on a context of its own (cleanupContext), and
// holds the sandbox's lock and the records' lock shared (lockCommand).
func (e *Engine) Del(ctx context.Context, req *request.Request, conf *config.PluginConf) error {
	log := e.Log.With("command", request.Del, "containerID", req.ContainerID, "pod", req.Pod.String())
	ctx, cancel := e.cleanupContext(ctx)
	defer cancel()
	unlock, err := e.lockCommand(req.ContainerID)
	if err != nil {
		return fmt.Errorf("sandbox %s of pod %s: %w", req.ContainerID, req.Pod, err)
	}
	defer unlock()
	sb := podnet.Sandbox{ContainerID: req.ContainerID, NetNS: req.NetNS}
	rec, err := e.Records.Load(req.ContainerID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return e.delWithoutRecord(ctx, log, req, conf)
	case err != nil:
		return fmt.Errorf("sandbox %s of pod %s: %w", req.ContainerID, req.Pod, err)
	}
	if failed := e.detach(ctx, log, sb, rec.Attachments); len(failed) > 0 {
		return &DetachError{ContainerID: req.ContainerID, Failed: failed}
	}
	if err := e.Records.Remove(req.ContainerID); err != nil {
		return fmt.Errorf("sandbox %s: removing its attachment record: %w", req.ContainerID, err)
	}
	log.Info("detached", "attachments", len(rec.Attachments))
	return nil
}

// DefaultCleanupTimeout bounds a rollback or a DEL's teardown when the engine
// is given no CleanupTimeout: the daemon's default request timeout. A delegate
// DEL takes well under a second; one still running after this is hung, and is
// killed (libcni runs delegates with the context), its failure reported.
const DefaultCleanupTimeout = 3 * time.Minute

// cleanupContext returns the context a rollback or a teardown runs on: ctx's
// values without its cancellation, bounded by CleanupTimeout. The caller may go
// away meanwhile (the runtime's timeout kills the shim, which ends the daemon's
// request); on its context every remaining delegate DEL would fail at once,
// leaving interfaces and addresses that nobody undoes until a DEL comes, and
// none comes for a rollback the runtime never knew about.
func (e *Engine) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	timeout := e.CleanupTimeout
	if timeout <= 0 {
		timeout = DefaultCleanupTimeout
	}
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}

// lockCommand takes what a command that changes a sandbox holds while it runs:
// the sandbox's lock, so that its commands run one at a time even from two
// processes (R-7.3; a runtime that gave up on an ADD sends the DEL while the
// ADD's thin plugin still runs), then the records' lock shared, which keeps GC
// out (the CNI spec lets no GC run while an ADD or DEL is in progress; ours
// tears down from the records and the result cache, which such a command
// changes). The returned function releases both.
func (e *Engine) lockCommand(containerID string) (func(), error) {
	unlockSandbox, err := e.Records.LockSandbox(containerID)
	if err != nil {
		return nil, err
	}
	unlock, err := e.Records.Lock(false)
	if err != nil {
		unlockSandbox()
		return nil, err
	}
	return func() { unlock(); unlockSandbox() }, nil
}

// detach runs DEL of each attachment in reverse order and returns the failures.
func (e *Engine) detach(ctx context.Context, log *slog.Logger, sb podnet.Sandbox, atts []podnet.Attachment) []error {
	var failed []error
	for _, a := range slices.Backward(atts) {
		err := e.Delegates.Del(ctx, sb, a)
		if err == nil {
			// D-4.2.1: the attachment's device-info file goes with it.
			err = e.Files.RemoveDeviceInfo(a.DeviceInfoFile)
		}
		if err != nil {
			log.Error("detach failed", "network", a.Network, "interface", a.IfName, "error", err)
			failed = append(failed, fmt.Errorf("network %q interface %s: %w", a.Network, a.IfName, err))
		}
	}
	return failed
}

// delWithoutRecord handles a DEL for which ADD left no record. Our ADD records
// before running any delegate, so this is a sandbox we never attached (DEL twice, a
// failed ADD already rolled back) or one attached by another implementation before
// an upgrade. When the attachments can still be known (inline delegates, or the
// pod is still in the API), they get a DEL, which plugins accept for attachments
// they never made; otherwise there is nothing of ours to undo, and DEL succeeds.
func (e *Engine) delWithoutRecord(ctx context.Context, log *slog.Logger, req *request.Request, conf *config.PluginConf) error {
	if handled, err := e.delLegacy(ctx, log, req, conf); handled {
		return err
	}
	pod, err := e.lookupPod(ctx, req)
	if err != nil {
		log.Info("no attachment record, and the pod cannot be read; nothing of ours to undo", "error", err)
		return nil
	}
	if e.Kube != nil && pod == nil {
		log.Info("no attachment record and no pod; nothing to undo")
		return nil
	}
	in, err := e.input(ctx, log, req, conf, pod, false)
	var planned []attach.Planned
	if err == nil {
		planned, err = attach.Resolve(ctx, in)
	}
	if err != nil {
		// Selections that no longer resolve: undo at least the cluster network.
		in.Selections, in.DefaultNetwork = nil, nil
		if planned, err = attach.Resolve(ctx, in); err != nil {
			log.Info("no attachment record and the networks do not resolve; nothing to undo", "error", err)
			return nil
		}
	}
	atts := make([]podnet.Attachment, 0, len(planned))
	for _, p := range planned {
		atts = append(atts, p.Attachment)
	}
	if failed := e.detach(ctx, log, podnet.Sandbox{ContainerID: req.ContainerID, NetNS: req.NetNS}, atts); len(failed) > 0 {
		return &DetachError{ContainerID: req.ContainerID, Failed: failed}
	}
	return nil
}

// delLegacy tears down a sandbox that upstream Multus attached before the node was
// upgraded, from upstream's own cache file, exactly as upstream's DEL would; the
// file goes when every delegate's DEL succeeded. It reports whether such a file
// was there.
func (e *Engine) delLegacy(ctx context.Context, log *slog.Logger, req *request.Request, conf *config.PluginConf) (bool, error) {
	atts, err := e.Records.LoadLegacy(req.ContainerID, req.IfName)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("sandbox %s of pod %s: %w", req.ContainerID, req.Pod, err)
	}
	args := attach.CNIArgs(req, nil)
	for i := range atts {
		atts[i].CNIArgs = args
		if atts[i].Default {
			atts[i].CapabilityArgs = conf.RuntimeConfig
		}
		// A configuration without cniVersion gets the meta-plugin's, as
		// upstream's DEL does for its cached conflists.
		if cfg, err := cniconf.WithDefaults(atts[i].Config, map[string]string{"cniVersion": conf.CNIVersion}); err == nil {
			atts[i].Config = cfg
		}
	}
	log.Info("tearing down a sandbox attached by upstream Multus, from its cache", "attachments", len(atts))
	if failed := e.detach(ctx, log, podnet.Sandbox{ContainerID: req.ContainerID, NetNS: req.NetNS}, atts); len(failed) > 0 {
		return true, &DetachError{ContainerID: req.ContainerID, Failed: failed}
	}
	return true, e.Records.RemoveLegacy(req.ContainerID)
}
