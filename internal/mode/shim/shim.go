// Package shim is multus-shim's handler: it checks the CNI environment, forwards
// the request to the node daemon over its unix socket and prints the daemon's
// answer in the configuration's CNI version. It links no Kubernetes client: the
// runtime starts it for every pod.
package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/containernetworking/cni/pkg/version"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/mode/socketapi"
	"github.com/polynet-cni/polynet/internal/request"
)

// Conf is what the shim reads of its configuration; the daemon reads the rest.
type Conf struct {
	CNIVersion      string `json:"cniVersion"`
	DaemonSocketDir string `json:"daemonSocketDir"`
	// Ours: how long to try to reach the daemon, and how long a request may take.
	DaemonConnectTimeout config.Duration `json:"daemonConnectTimeout"`
	DaemonRequestTimeout config.Duration `json:"daemonRequestTimeout"`
}

// Defaults of the shim's own keys. Reaching a local socket takes microseconds;
// the bound only has to cover a daemon that is starting or overloaded. A pod's
// ADD can take minutes (a slow IPAM), so the request bound is generous.
const (
	DefaultConnectTimeout = 2 * time.Second
	DefaultRequestTimeout = 4 * time.Minute
)

// cniVars are the CNI variables forwarded: the daemon reads the request's
// environment, never its own.
var cniVars = []string{"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH", "CNI_NETNS_OVERRIDE"}

// Handler implements plugin.Handler.
type Handler struct{}

// Handle forwards one command. When the daemon cannot be reached every command
// fails with CNI code 11, DEL included: reporting a DEL as done while nothing was
// torn down leaks addresses (upstream swallows it, #1239); the runtime retries.
func (Handler) Handle(ctx context.Context, command string, stdin []byte, getenv func(string) string) ([]byte, error) {
	if _, err := request.FromEnv(command, getenv, stdin); err != nil {
		return nil, err
	}
	conf := Conf{
		DaemonSocketDir:      config.DefaultDaemonSocketDir,
		DaemonConnectTimeout: config.Duration{Duration: DefaultConnectTimeout},
		DaemonRequestTimeout: config.Duration{Duration: DefaultRequestTimeout},
	}
	if err := json.Unmarshal(stdin, &conf); err != nil {
		return nil, &config.FieldError{Value: string(stdin), Allowed: "a JSON object with daemonSocketDir and the plugin keys (" + err.Error() + ")"}
	}
	if conf.CNIVersion == "" {
		conf.CNIVersion = "0.1.0"
	}
	env := map[string]string{}
	for _, k := range cniVars {
		if v := getenv(k); v != "" {
			env[k] = v
		}
	}
	client := socketapi.Client{
		Socket:         socketapi.SocketPath(conf.DaemonSocketDir),
		ConnectTimeout: conf.DaemonConnectTimeout.Duration,
		RequestTimeout: conf.DaemonRequestTimeout.Duration,
	}
	resp, err := client.Do(ctx, socketapi.PathCNI, &socketapi.Request{Env: env, Config: stdin})
	if err != nil {
		return nil, err
	}
	if command != request.Add {
		return nil, nil
	}
	return inVersion(resp.Result, conf.CNIVersion)
}

// inVersion converts the daemon's result to the configuration's CNI version.
func inVersion(raw json.RawMessage, cniVersion string) ([]byte, error) {
	var probe struct {
		CNIVersion string `json:"cniVersion"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("multus-daemon's result: %w", err)
	}
	res, err := version.NewResult(probe.CNIVersion, raw)
	if err != nil {
		return nil, fmt.Errorf("multus-daemon's result: %w", err)
	}
	out, err := res.GetAsVersion(cniVersion)
	if err != nil {
		return nil, fmt.Errorf("converting the result to %s: %w", cniVersion, err)
	}
	return json.Marshal(out)
}
