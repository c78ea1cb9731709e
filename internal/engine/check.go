package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
)

// Check runs CHECK on every attachment of the sandbox, from its record: upstream
// checks only a static delegates list, which makes CHECK a no-op in most
// deployments. The first failure is returned, naming the attachment and keeping
// the delegate's error and code. It holds the sandbox's lock: an ADD
// or DEL of the sandbox running meanwhile would make it check attachments half
// made or half gone.
func (e *Engine) Check(ctx context.Context, req *request.Request, conf *config.PluginConf) error {
	log := e.Log.With("command", request.Check, "containerID", req.ContainerID, "pod", req.Pod.String())
	unlock, err := e.Records.LockSandbox(req.ContainerID)
	if err != nil {
		return fmt.Errorf("sandbox %s of pod %s: %w", req.ContainerID, req.Pod, err)
	}
	defer unlock()
	rec, err := e.Records.Load(req.ContainerID)
	if errors.Is(err, fs.ErrNotExist) {
		return &UnknownContainerError{ContainerID: req.ContainerID}
	}
	if err != nil {
		return fmt.Errorf("sandbox %s of pod %s: %w", req.ContainerID, req.Pod, err)
	}
	sb := podnet.Sandbox{ContainerID: req.ContainerID, NetNS: req.NetNS}
	for _, a := range rec.Attachments {
		if err := e.Delegates.Check(ctx, sb, a); err != nil {
			log.Error("check failed", "network", a.Network, "interface", a.IfName, "error", err)
			return &AttachError{Pod: req.Pod, Network: a.Network, IfName: a.IfName, Err: err, Op: "checking"}
		}
	}
	return nil
}
