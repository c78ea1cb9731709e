package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/engine/attach"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
)

// GC honours the runtime's list of valid attachments (CNI 1.1,
// cni.dev/valid-attachments). Every sandbox we hold a record of that is not in
// the list is torn down through all its delegates, every network of it, and its
// record removed: what piles up when no runtime ever sends the DEL (upstream
// #1488). Then each network gets GC with the attachments of it that are still
// valid, so its plugins free what they hold for anything else; upstream GCs the
// cluster network only and ignores the runtime's list.
//
// An attachment of a sandbox in the valid list is never touched: its record is
// kept, and every cached attachment of a valid sandbox counts as valid even when
// its record cannot be read. Records younger than gcGracePeriod are spared too: an
// ADD may have begun after the runtime took its list. GC holds the store's lock
// exclusively, ADDs share it, so a GC never meets an ADD half done.
func (e *Engine) GC(ctx context.Context, req *request.Request, conf *config.PluginConf) error {
	log := e.Log.With("command", request.GC)
	unlock, err := e.Records.Lock(true)
	if err != nil {
		return err
	}
	defer unlock()
	valid := map[config.Attachment]bool{}
	validSandbox := map[string]bool{}
	for _, a := range conf.Valid() {
		valid[a] = true
		validSandbox[a.ContainerID] = true
	}
	kept, errs := e.collectStale(ctx, log, conf, valid, validSandbox)
	networks, validByNetwork, err := e.networksToGC(ctx, req, conf, kept, validSandbox)
	if err != nil {
		errs = append(errs, err)
	}
	for name, cfg := range networks {
		if err := e.Delegates.GC(ctx, name, cfg, validByNetwork[name]); err != nil {
			log.Error("network GC failed", "network", name, "error", err)
			errs = append(errs, fmt.Errorf("GC of network %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// collectStale tears down the sandboxes that are neither valid nor young, and
// returns the records kept.
func (e *Engine) collectStale(ctx context.Context, log *slog.Logger, conf *config.PluginConf, valid map[config.Attachment]bool, validSandbox map[string]bool) ([]*podnet.Record, []error) {
	ids, err := e.Records.List()
	if err != nil {
		return nil, []error{fmt.Errorf("listing attachment records: %w", err)}
	}
	var kept []*podnet.Record
	var errs []error
	for _, id := range ids {
		rec, err := e.Records.Load(id)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a DEL removed it meanwhile
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		young := e.now().Sub(rec.Created) < conf.GCGracePeriod.Duration
		// The runtime attaches us once per sandbox, so its container ID decides;
		// a record made by a hot-plug alone does not know the runtime's ifname.
		isValid := valid[config.Attachment{ContainerID: rec.ContainerID, IfName: rec.IfName}] || validSandbox[rec.ContainerID]
		if isValid || young {
			kept = append(kept, rec)
			continue
		}
		sb := podnet.Sandbox{ContainerID: rec.ContainerID, NetNS: rec.NetNS}
		if failed := e.detach(ctx, log, sb, rec.Attachments); len(failed) > 0 {
			kept = append(kept, rec)
			errs = append(errs, &DetachError{ContainerID: rec.ContainerID, Failed: failed})
			continue
		}
		if err := e.Records.Remove(id); err != nil {
			errs = append(errs, err)
			continue
		}
		log.Info("collected a sandbox the runtime no longer knows", "containerID", rec.ContainerID, "pod", rec.Pod.String())
	}
	return kept, errs
}

// networksToGC returns the configuration of every network worth a GC (the
// cluster network, those of the kept records, those in the result cache) and,
// per network, the attachments that are still valid.
func (e *Engine) networksToGC(ctx context.Context, req *request.Request, conf *config.PluginConf, kept []*podnet.Record, validSandbox map[string]bool) (map[string][]byte, map[string][]types.GCAttachment, error) {
	networks := map[string][]byte{}
	validBy := map[string][]types.GCAttachment{}
	seen := map[string]bool{}
	keep := func(network, containerID, ifName string) {
		key := network + "\x00" + containerID + "\x00" + ifName
		if !seen[key] {
			seen[key] = true
			validBy[network] = append(validBy[network], types.GCAttachment{ContainerID: containerID, IfName: ifName})
		}
	}
	for _, rec := range kept {
		for _, a := range rec.Attachments {
			name := configName(a.Config)
			networks[name] = a.Config
			keep(name, rec.ContainerID, a.IfName)
		}
	}
	in := attach.Input{Conf: conf, Req: req, Confs: e.Confs}
	if e.Kube != nil {
		in.NADs = e.Kube
	}
	var errs []error
	if cluster, err := attach.ClusterNetwork(ctx, in); err == nil {
		if name := configName(cluster.Config); networks[name] == nil {
			networks[name] = cluster.Config
		}
	} else {
		errs = append(errs, fmt.Errorf("resolving the cluster network for GC: %w", err))
	}
	cached, err := e.Delegates.Cached()
	if err != nil {
		errs = append(errs, fmt.Errorf("listing cached results: %w", err))
	}
	for _, c := range cached {
		if networks[c.Network] == nil {
			networks[c.Network] = c.Config
		}
		if validSandbox[c.ContainerID] {
			keep(c.Network, c.ContainerID, c.IfName)
		}
	}
	return networks, validBy, errors.Join(errs...)
}

// configName is the network name of a CNI configuration, the key under which
// libcni caches its attachments.
func configName(cfg []byte) string {
	var c struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(cfg, &c)
	return c.Name
}
