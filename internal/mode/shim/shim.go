// Package shim is multus-shim's handler: it checks the CNI environment, forwards
// the request to the node daemon over its unix socket and prints the daemon's
// answer in the configuration's CNI version. It links no Kubernetes client: the
// runtime starts it for every pod.
package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/version"

	"github.com/polynet-cni/polynet/internal/cnicode"
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

// ConfError says the shim cannot read its configuration. It names the key at
// fault and what the key wants, never the configuration's text: the runtime
// logs the message, and the configuration may hold credentials.
type ConfError struct {
	// Field is the key; empty when the document itself is at fault.
	Field string
	Want  string
}

func (e *ConfError) Error() string {
	if e.Field == "" {
		return "multus-shim config: want " + e.Want
	}
	return fmt.Sprintf("multus-shim config: field %q: want %s", e.Field, e.Want)
}

// CNICode reports an invalid network configuration (7).
func (e *ConfError) CNICode() uint { return cnicode.InvalidNetworkConfig }

const wantDuration = `a positive duration string such as "10s"`

// parseConf reads the shim's keys and applies the defaults. Its errors come from
// the error's kind and position, never its text: encoding/json quotes numbers
// and characters of the input in its messages.
func parseConf(stdin []byte) (Conf, error) {
	conf := Conf{
		DaemonSocketDir:      config.DefaultDaemonSocketDir,
		DaemonConnectTimeout: config.Duration{Duration: DefaultConnectTimeout},
		DaemonRequestTimeout: config.Duration{Duration: DefaultRequestTimeout},
	}
	var raw struct {
		CNIVersion           string          `json:"cniVersion"`
		DaemonSocketDir      string          `json:"daemonSocketDir"`
		DaemonConnectTimeout json.RawMessage `json:"daemonConnectTimeout"`
		DaemonRequestTimeout json.RawMessage `json:"daemonRequestTimeout"`
	}
	if err := json.Unmarshal(stdin, &raw); err != nil {
		return conf, decodeError(err)
	}
	conf.CNIVersion = raw.CNIVersion
	if conf.CNIVersion == "" {
		conf.CNIVersion = "0.1.0"
	}
	// Checked before the daemon runs anything: an ADD whose result cannot be
	// printed would leave the runtime to clean up an attachment it never saw.
	if supported := version.All.SupportedVersions(); !slices.Contains(supported, conf.CNIVersion) {
		return conf, &ConfError{Field: "cniVersion", Want: "one of " + strings.Join(supported, ", ")}
	}
	if raw.DaemonSocketDir != "" {
		conf.DaemonSocketDir = raw.DaemonSocketDir
	}
	for _, d := range []struct {
		key string
		raw json.RawMessage
		out *config.Duration
	}{
		{"daemonConnectTimeout", raw.DaemonConnectTimeout, &conf.DaemonConnectTimeout},
		{"daemonRequestTimeout", raw.DaemonRequestTimeout, &conf.DaemonRequestTimeout},
	} {
		if d.raw == nil {
			continue
		}
		if err := d.out.UnmarshalJSON(d.raw); err != nil || d.out.Duration <= 0 {
			return conf, &ConfError{Field: d.key, Want: wantDuration}
		}
	}
	return conf, nil
}

// decodeError describes a decode error of the configuration without its text.
func decodeError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &ConfError{Want: fmt.Sprintf("a JSON object (the text is not JSON at byte %d)", se.Offset)}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return &ConfError{Field: te.Field, Want: "a JSON " + te.Type.String()}
	}
	return &ConfError{Want: "a JSON object"}
}

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
	conf, err := parseConf(stdin)
	if err != nil {
		return nil, err
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
