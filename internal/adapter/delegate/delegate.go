// Package delegate runs one attachment's CNI configuration (a conf or a conflist)
// through libcni: ADD, DEL, CHECK, STATUS and GC. It knows nothing of Kubernetes:
// the engine gives it the exact bytes to run, the interface name and the arguments.
package delegate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// Runner executes delegates found in its plugin folders, caching results in its
// cache folder (libcni keeps them under <CacheDir>/results).
type Runner struct {
	// Path lists the folders searched for plugin binaries, in order: the
	// configured binDir, then CNI_PATH. Nothing outside them is ever executed.
	Path     []string
	CacheDir string
	// Exec runs plugin processes; nil is libcni's default.
	Exec invoke.Exec
}

// Error is a delegate's failure. It keeps the delegate's own error, and thus its
// CNI code, reachable through errors.As.
type Error struct {
	Op      string
	Network string
	Plugins []string
	Err     error
}

func (e *Error) Error() string {
	return fmt.Sprintf("network %q (plugins %s) failed (%s): %v", e.Network, strings.Join(e.Plugins, ","), e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func (r *Runner) cni() *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir(r.Path, r.CacheDir, r.Exec)
}

// prepare parses the attachment's configuration and builds libcni's runtime
// arguments: the capability arguments go to plugins that declare them, as raw JSON
// so numbers keep their exact form.
func (r *Runner) prepare(op string, sb podnet.Sandbox, a podnet.Attachment) (*libcni.NetworkConfigList, *libcni.RuntimeConf, error) {
	list, err := List(a.Config)
	if err != nil {
		return nil, nil, &Error{Op: op, Network: a.Network, Err: err}
	}
	caps := make(map[string]any, len(a.CapabilityArgs))
	for k, v := range a.CapabilityArgs {
		caps[k] = v
	}
	rt := &libcni.RuntimeConf{
		ContainerID:    sb.ContainerID,
		NetNS:          sb.NetNS,
		IfName:         a.IfName,
		Args:           a.CNIArgs,
		CapabilityArgs: caps,
	}
	return list, rt, nil
}

// Add runs ADD and returns the delegate's result.
func (r *Runner) Add(ctx context.Context, sb podnet.Sandbox, a podnet.Attachment) (types.Result, error) {
	list, rt, err := r.prepare("add", sb, a)
	if err != nil {
		return nil, err
	}
	res, err := r.cni().AddNetworkList(ctx, list, rt)
	if err != nil {
		return nil, &Error{Op: "add", Network: a.Network, Plugins: pluginTypes(list), Err: err}
	}
	return res, nil
}

// Del runs DEL, with the result cached by ADD as prevResult where libcni has it.
func (r *Runner) Del(ctx context.Context, sb podnet.Sandbox, a podnet.Attachment) error {
	list, rt, err := r.prepare("del", sb, a)
	if err != nil {
		return err
	}
	if err := r.cni().DelNetworkList(ctx, list, rt); err != nil {
		return &Error{Op: "del", Network: a.Network, Plugins: pluginTypes(list), Err: err}
	}
	return nil
}

// Check runs CHECK against the result cached by ADD.
func (r *Runner) Check(ctx context.Context, sb podnet.Sandbox, a podnet.Attachment) error {
	list, rt, err := r.prepare("check", sb, a)
	if err != nil {
		return err
	}
	if err := r.cni().CheckNetworkList(ctx, list, rt); err != nil {
		if errors.Is(err, libcni.ErrorCheckNotSupp) {
			return nil // configurations older than 0.4.0 have no CHECK
		}
		return &Error{Op: "check", Network: a.Network, Plugins: pluginTypes(list), Err: err}
	}
	return nil
}

// Result returns the result the attachment's ADD left in libcni's cache, the
// one its CHECK and DEL are given.
func (r *Runner) Result(sb podnet.Sandbox, a podnet.Attachment) (types.Result, error) {
	list, rt, err := r.prepare("read the cached result", sb, a)
	if err != nil {
		return nil, err
	}
	res, err := r.cni().GetNetworkListCachedResult(list, rt)
	if err == nil && res == nil {
		err = errors.New("no result cached")
	}
	if err != nil {
		return nil, &Error{Op: "read the cached result", Network: a.Network, Plugins: pluginTypes(list), Err: err}
	}
	return res, nil
}

// Cached lists the attachments in the result cache.
func (r *Runner) Cached() ([]podnet.CachedAttachment, error) {
	atts, err := r.cni().GetCachedAttachments("")
	if err != nil {
		return nil, err
	}
	out := make([]podnet.CachedAttachment, 0, len(atts))
	for _, a := range atts {
		out = append(out, podnet.CachedAttachment{Network: a.Network, ContainerID: a.ContainerID, IfName: a.IfName, Config: a.Config})
	}
	return out, nil
}

// Status runs STATUS of a network configuration.
func (r *Runner) Status(ctx context.Context, network string, config []byte) error {
	list, err := List(config)
	if err != nil {
		return &Error{Op: "status", Network: network, Err: err}
	}
	if err := r.cni().GetStatusNetworkList(ctx, list); err != nil {
		return &Error{Op: "status", Network: network, Plugins: pluginTypes(list), Err: err}
	}
	return nil
}

// GC runs GC of a network configuration, keeping the valid attachments.
func (r *Runner) GC(ctx context.Context, network string, config []byte, valid []types.GCAttachment) error {
	list, err := List(config)
	if err != nil {
		return &Error{Op: "gc", Network: network, Err: err}
	}
	if err := r.cni().GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
		return &Error{Op: "gc", Network: network, Plugins: pluginTypes(list), Err: err}
	}
	return nil
}

func pluginTypes(list *libcni.NetworkConfigList) []string {
	out := make([]string, 0, len(list.Plugins))
	for _, p := range list.Plugins {
		out = append(out, p.Network.Type)
	}
	return out
}
