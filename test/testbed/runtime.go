package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/polynet-cni/polynet/internal/adapter/delegate"
)

// Pod is the Kubernetes identity of a sandbox, as the kubelet passes it to the
// runtime and the runtime to CNI.
type Pod struct {
	Namespace string
	Name      string
	UID       string
}

// Sandbox is one pod sandbox as the runtime sees it: the pod, the sandbox's
// container ID and its network namespace.
type Sandbox struct {
	Pod         Pod
	ContainerID string
	NetNS       string
	// IfName is CNI_IFNAME; empty means eth0.
	IfName string
	// CapabilityArgs are the runtime's runtimeConfig (portMappings, bandwidth...).
	CapabilityArgs map[string]any
}

// CNIArgs are the CNI_ARGS the kubelet's runtimes send for a pod.
func (s Sandbox) CNIArgs() [][2]string {
	return [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", s.Pod.Namespace},
		{"K8S_POD_NAME", s.Pod.Name},
		{"K8S_POD_INFRA_CONTAINER_ID", s.ContainerID},
		{"K8S_POD_UID", s.Pod.UID},
	}
}

func (s Sandbox) ifName() string {
	if s.IfName == "" {
		return "eth0"
	}
	return s.IfName
}

// Runtime invokes CNI plugins the way containerd and CRI-O do: through libcni, with
// a network configuration list, CNI_PATH set to the plugin folders, and a result
// cache of its own. Each invocation is bounded by CallTimeout within the ctx it
// is given, as a runtime bounds its CNI calls.
type Runtime struct {
	CNI *libcni.CNIConfig
}

// NewRuntime returns a runtime that finds plugins in binDirs and caches results in
// cacheDir.
func NewRuntime(binDirs []string, cacheDir string) *Runtime {
	return &Runtime{CNI: libcni.NewCNIConfigWithCacheDir(binDirs, cacheDir, nil)}
}

// ConfList parses a conflist, or a single conf which it wraps in a one-plugin list,
// as runtimes accept both from their configuration folder; it is the engine's own
// parser (delegate.List), so tests run configurations exactly as the engine does.
func ConfList(conf []byte) (*libcni.NetworkConfigList, error) {
	return delegate.List(conf)
}

func (r *Runtime) runtimeConf(s Sandbox) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID:    s.ContainerID,
		NetNS:          s.NetNS,
		IfName:         s.ifName(),
		Args:           s.CNIArgs(),
		CapabilityArgs: s.CapabilityArgs,
	}
}

// Add runs ADD of the network for the sandbox.
func (r *Runtime) Add(ctx context.Context, conf []byte, s Sandbox) (types.Result, error) {
	list, err := ConfList(conf)
	if err != nil {
		return nil, err
	}
	ctx, cancel := callContext(ctx)
	defer cancel()
	return r.CNI.AddNetworkList(ctx, list, r.runtimeConf(s))
}

// Del runs DEL of the network for the sandbox.
func (r *Runtime) Del(ctx context.Context, conf []byte, s Sandbox) error {
	list, err := ConfList(conf)
	if err != nil {
		return err
	}
	ctx, cancel := callContext(ctx)
	defer cancel()
	return r.CNI.DelNetworkList(ctx, list, r.runtimeConf(s))
}

// Check runs CHECK of the network for the sandbox.
func (r *Runtime) Check(ctx context.Context, conf []byte, s Sandbox) error {
	list, err := ConfList(conf)
	if err != nil {
		return err
	}
	ctx, cancel := callContext(ctx)
	defer cancel()
	return r.CNI.CheckNetworkList(ctx, list, r.runtimeConf(s))
}

// Status runs STATUS of the network.
func (r *Runtime) Status(ctx context.Context, conf []byte) error {
	list, err := ConfList(conf)
	if err != nil {
		return err
	}
	ctx, cancel := callContext(ctx)
	defer cancel()
	return r.CNI.GetStatusNetworkList(ctx, list)
}

// GC runs GC of the network, keeping the valid attachments.
func (r *Runtime) GC(ctx context.Context, conf []byte, valid []types.GCAttachment) error {
	list, err := ConfList(conf)
	if err != nil {
		return err
	}
	ctx, cancel := callContext(ctx)
	defer cancel()
	return r.CNI.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: valid})
}

// Exec is a raw CNI process invocation: environment and stdin in, stdout, stderr and
// exit code out. Tests use it where libcni would hide what the process printed.
type Exec struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// CNIError decodes stdout as a CNI error object.
func (e Exec) CNIError() (*types.Error, error) {
	var ce types.Error
	if err := json.Unmarshal(e.Stdout, &ce); err != nil {
		return nil, fmt.Errorf("stdout %q is not a CNI error: %w", e.Stdout, err)
	}
	return &ce, nil
}

// Invocation is one run of a plugin binary: arguments, exactly this environment
// (plus PATH), and stdin.
type Invocation struct {
	Binary string
	Args   []string
	Env    map[string]string
	Stdin  []byte
}

// ExecPlugin runs the invocation and returns what the process printed and its exit
// code; an error means it could not run at all. The run is bounded by CallTimeout
// within ctx.
func ExecPlugin(ctx context.Context, inv Invocation) (Exec, error) {
	ctx, cancel := callContext(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, inv.Binary, inv.Args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range inv.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = bytes.NewReader(inv.Stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	res := Exec{Stdout: out.Bytes(), Stderr: errOut.Bytes()}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		res.ExitCode = exitErr.ExitCode()
		return res, nil
	}
	return res, err
}

// CNIEnv builds the CNI environment of a command for the sandbox.
func CNIEnv(command string, s Sandbox, binDirs ...string) map[string]string {
	args := make([]string, 0, 5)
	for _, kv := range s.CNIArgs() {
		args = append(args, kv[0]+"="+kv[1])
	}
	return map[string]string{
		"CNI_COMMAND":     command,
		"CNI_CONTAINERID": s.ContainerID,
		"CNI_NETNS":       s.NetNS,
		"CNI_IFNAME":      s.ifName(),
		"CNI_ARGS":        strings.Join(args, ";"),
		"CNI_PATH":        strings.Join(binDirs, string(filepath.ListSeparator)),
	}
}
