// Package attach turns a pod's network requests into the ordered list of
// attachments the engine runs: the cluster default network first, then the
// configured default networks, then the networks the pod's annotation selects. It
// resolves each network's CNI configuration (a NAD's spec.config, or an on-disk
// configuration, R-3.4.1), enforces namespace isolation, names the pod
// interfaces (R-4.1.2.1.5, R-4.2.1) and builds each delegate's arguments: the
// runtime's runtimeConfig for the cluster network only and each selection's
// own requests as capability arguments, which a plugin of the network must declare
// (R-4.1.2.1.3 to .10).
package attach

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/polynet-cni/polynet/internal/cniconf"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
	"github.com/polynet-cni/polynet/internal/selection"
)

// NADGetter reads NetworkAttachmentDefinitions; a missing one is a
// *podnet.NotFoundError. Resolution reads a pod's NADs concurrently, so a
// NADGetter must be safe for concurrent use.
type NADGetter interface {
	NAD(ctx context.Context, namespace, name string) (*podnet.NAD, error)
}

// ConfSource reads the CNI configurations on the node's disk as libcni loads
// them (package confdir), so that planning does no file I/O. Every error it
// returns names the file or folder concerned.
type ConfSource interface {
	// Find returns the configuration named name in folder dir, and its file:
	// conflists first, then single confs (.conf, .json), each in file name
	// order (R-3.4.1 (2) and (3)); files that do not parse are skipped. It
	// returns no bytes and no error when none matches, also when dir does not
	// exist. The bytes are the file's own.
	Find(dir, name string) (conf []byte, file string, err error)
	// Load returns the configuration at path, a file or a folder (then its
	// first .conf, .conflist or .json file in name order), and the file read.
	// A conflist comes with the plugins of <its folder>/<its name>/*.conf
	// appended, as libcni loads it, unless it sets loadOnlyInlinedPlugins. An
	// error wraps fs.ErrNotExist when path holds no configuration; file is set
	// with every error about the file chosen.
	Load(path string) (conf []byte, file string, err error)
	// Plugins returns the plugin configurations (*.conf, in file name order)
	// of the folder <base>/<name>, base being ref when ref is a folder and
	// else the folder holding ref; none when there is no such folder.
	Plugins(ref, name string) ([]json.RawMessage, error)
}

// Planned is one attachment to make.
type Planned struct {
	podnet.Attachment
	// Selection is the annotation element that asked for it; nil for the cluster
	// network and the configured default networks.
	Selection *selection.Element
	// NAD is the definition it came from, when it came from one.
	NAD *podnet.NAD
	// Auxiliary marks the auxiliary chain, which makes no pod interface and so
	// has no network-status entry.
	Auxiliary bool
	// DeviceID is the device given to the attachment, Resource the
	// device-plugin resource it came from, DeviceInfoSource the device plugin's
	// device-info file to copy to the attachment's before ADD.
	DeviceID, Resource, DeviceInfoSource string
}

// Input is everything resolution depends on.
type Input struct {
	Conf *config.PluginConf
	Req  *request.Request
	// Pod is nil in delegates-only mode (no Kubernetes) and when the pod is gone.
	Pod *podnet.Pod
	// NADs is nil in delegates-only mode.
	NADs NADGetter
	// DefaultNetwork replaces the cluster network: the pod's
	// v1.multus-cni.io/default-network annotation, already parsed.
	DefaultNetwork *selection.Element
	// Selections are the elements of the pod's networks annotation, in order.
	Selections []selection.Element
	// Devices tells the pod's allocated devices; nil when none can be known.
	Devices DeviceSource
	// Confs reads configurations on disk; nil when none can be read.
	Confs ConfSource
}

// Resolve returns the attachments in the order they are made. A pod requesting
// more networks than maxNetworksPerPod is refused before any NAD is read.
func Resolve(ctx context.Context, in Input) ([]Planned, error) {
	if err := checkNetworkCount(in); err != nil {
		return nil, err
	}
	if in.NADs != nil {
		in.NADs = prefetch(ctx, in)
	}
	var planned []Planned
	cluster, err := clusterNetworks(ctx, in)
	if err != nil {
		return nil, err
	}
	planned = append(planned, cluster...)
	for i := range in.Selections {
		p, err := selected(ctx, in, &in.Selections[i])
		if err != nil {
			return nil, err
		}
		planned = append(planned, p)
	}
	aux, err := auxiliaryChain(in)
	if err != nil {
		return nil, err
	}
	if aux != nil {
		planned = append(planned, *aux)
	}
	return finish(ctx, in, planned, nil, func() error { return nameInterfaces(in.Req.IfName, planned) })
}

// finish gives the chosen attachments what depends on the others: a device
// each (none of taken), their interface names (name), their device-info files
// (whose names include the interface) and the pod's CNI_ARGS.
func finish(ctx context.Context, in Input, planned []Planned, taken map[string]bool, name func() error) ([]Planned, error) {
	if err := assignDevices(ctx, in, planned, taken); err != nil {
		return nil, err
	}
	if err := name(); err != nil {
		return nil, err
	}
	if err := assignDeviceInfoFiles(in, planned); err != nil {
		return nil, err
	}
	args := delegateArgs(in)
	for i := range planned {
		planned[i].CNIArgs = args
	}
	return planned, nil
}

// clusterNetworks resolves the cluster default network and the configured default
// networks (or, with inline delegates, every delegate: the first is the cluster
// network).
func clusterNetworks(ctx context.Context, in Input) ([]Planned, error) {
	conf := in.Conf
	var out []Planned
	switch {
	case conf.ClusterNetwork != "":
		p, err := byReference(ctx, in, conf.ClusterNetwork)
		if err != nil && in.DefaultNetwork == nil {
			return nil, err
		}
		out = append(out, p)
	default:
		for i, raw := range conf.Delegates {
			p, err := inline(in, i, raw)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	// The pod's default-network annotation replaces the cluster network only;
	// further inline delegates and defaultNetworks stay, as upstream does.
	if in.DefaultNetwork != nil {
		p, err := fromNAD(ctx, in, in.DefaultNetwork.Namespace, in.DefaultNetwork.Name)
		if err != nil {
			return nil, err
		}
		out[0] = p
	}
	out[0].Default = true
	out[0].CapabilityArgs = conf.RuntimeConfig
	if conf.ClusterNetwork != "" && !inSystemNamespace(in) {
		for _, ref := range conf.DefaultNetworks {
			p, err := byReference(ctx, in, ref)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// ClusterNetwork resolves the cluster default network alone, for commands that
// concern no pod (STATUS, GC).
func ClusterNetwork(ctx context.Context, in Input) (Planned, error) {
	in.Pod, in.DefaultNetwork, in.Selections = nil, nil, nil
	conf := *in.Conf
	conf.DefaultNetworks = nil
	in.Conf = &conf
	out, err := clusterNetworks(ctx, in)
	if err != nil {
		return Planned{}, err
	}
	return out[0], nil
}

// inSystemNamespace reports whether the pod's namespace is one of systemNamespaces,
// whose pods do not get defaultNetworks. (Upstream compares the pod's name with the
// list by mistake, a QUIRK not copied.)
func inSystemNamespace(in Input) bool {
	return slices.Contains(in.Conf.SystemNamespaces, in.Req.Pod.Namespace)
}

// inline resolves one element of the plugin conf's "delegates".
func inline(in Input, i int, raw json.RawMessage) (Planned, error) {
	m, err := cniconf.Decode(raw)
	if err != nil {
		return Planned{}, &ConfigError{Network: "delegates[" + strconv.Itoa(i) + "]", Source: "the plugin config", Err: err}
	}
	name := cniconf.String(m, "name")
	cfg, err := cniconf.WithDefaults(raw, map[string]string{"cniVersion": in.Conf.CNIVersion})
	if err != nil {
		return Planned{}, &ConfigError{Network: name, Source: "the plugin config", Err: err}
	}
	return Planned{Attachment: podnet.Attachment{Network: name, Config: cfg}}, nil
}

// selected resolves one annotation element.
func selected(ctx context.Context, in Input, sel *selection.Element) (Planned, error) {
	if err := checkIsolation(in, sel); err != nil {
		return Planned{}, err
	}
	p, err := fromNAD(ctx, in, sel.Namespace, sel.Name)
	if err != nil {
		return Planned{}, err
	}
	p.Selection = sel
	p.Requested = &podnet.Requested{Network: sel.Ref(), Interface: sel.Interface}
	if p.Config, err = mergeCNIArgs(p.Config, sel.CNIArgs); err != nil {
		return Planned{}, &ConfigError{Network: p.Network, Source: "cni-args", Err: err}
	}
	if p.CapabilityArgs, err = capabilityArgs(p.Network, p.Config, sel); err != nil {
		return Planned{}, err
	}
	return p, nil
}

// checkIsolation applies namespaceIsolation: a pod may use NADs of its own
// namespace and of the global namespaces only. Refusal fails the ADD.
func checkIsolation(in Input, sel *selection.Element) error {
	if !in.Conf.NamespaceIsolation || sel.Namespace == in.Req.Pod.Namespace {
		return nil
	}
	global := in.Conf.GlobalNamespaces
	if len(global) == 0 {
		global = []string{"default"}
	}
	if slices.Contains(global, sel.Namespace) {
		return nil
	}
	return &RefusedError{
		Network: sel.Ref(),
		Reason: fmt.Sprintf("namespaceIsolation is on and pod %s may only use NADs of namespace %q or of %v",
			in.Req.Pod, in.Req.Pod.Namespace, global),
	}
}

func delegateArgs(in Input) [][2]string { return CNIArgs(in.Req, in.Pod) }

// CNIArgs are the CNI_ARGS every delegate gets: the runtime's own, which carry
// the K8S_POD_* keys, with IgnoreUnknown so plugins that do not know a key still
// run, and the pod's UID filled in from the API (pod, when known) when the runtime
// sent none.
func CNIArgs(req *request.Request, pod *podnet.Pod) [][2]string {
	args := slices.Clone(req.Args)
	if _, ok := args.Get("IgnoreUnknown"); !ok {
		args = append(request.Args{{"IgnoreUnknown", "1"}}, args...)
	}
	if uid, ok := args.Get("K8S_POD_UID"); (!ok || uid == "") && pod != nil {
		i := slices.IndexFunc(args, func(kv [2]string) bool { return kv[0] == "K8S_POD_UID" })
		if i < 0 {
			args = append(args, [2]string{"K8S_POD_UID", pod.UID})
		} else {
			args[i][1] = pod.UID
		}
	}
	return args
}

// Single resolves one network given as a CNI configuration, for a hot-plug
// controller's /delegate request: the configuration as sent, the selection's
// cni-args and runtime arguments, the pod's CNI_ARGS, the interface given.
func Single(in Input, cfg []byte, sel *selection.Element, ifName string) (Planned, error) {
	m, err := cniconf.Decode(cfg)
	if err != nil {
		return Planned{}, &ConfigError{Network: "delegate", Source: "the request", Err: err}
	}
	name := cniconf.String(m, "name")
	if cfg, err = checked(cfg, "", in.Conf.CNIVersion); err != nil {
		return Planned{}, &ConfigError{Network: name, Source: "the request", Err: err}
	}
	p := Planned{Attachment: podnet.Attachment{Network: name, Config: cfg, IfName: ifName}, Selection: sel}
	if sel != nil {
		if p.Config, err = mergeCNIArgs(p.Config, sel.CNIArgs); err != nil {
			return Planned{}, &ConfigError{Network: name, Source: "cni-args", Err: err}
		}
		if p.CapabilityArgs, err = capabilityArgs(name, p.Config, sel); err != nil {
			return Planned{}, err
		}
	}
	p.CNIArgs = delegateArgs(in)
	return p, nil
}
