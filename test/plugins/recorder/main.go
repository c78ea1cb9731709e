// Command recorder is a CNI plugin for tests. Every invocation writes the stdin
// config and the CNI environment it received to a file in the conf's recordDir, then
// answers as the conf scripts it: a CNI error for a command listed in `errors`, else
// the `result` given (converted to the conf's cniVersion), else the prevResult it was
// chained after, else a result with one interface named CNI_IFNAME in CNI_NETNS and
// the address `ip`. With `errorsWhile`, the scripted errors apply only while that
// file exists; with `sleepMs`, ADD waits that long after recording. It creates nothing, so it proves what a delegate was given
// without needing a real network.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/polynet-cni/polynet/test/recording"
)

type conf struct {
	types.PluginConf
	RecordDir string                 `json:"recordDir"`
	Result    json.RawMessage        `json:"result,omitempty"`
	Errors    map[string]types.Error `json:"errors,omitempty"`
	// ErrorsWhile, when set, makes Errors apply only while that file exists, so a
	// test can make a delegate fail, then recover, with the same config bytes.
	ErrorsWhile string `json:"errorsWhile,omitempty"`
	// SleepMs makes ADD wait this long after recording, so a test can act while
	// an ADD is in flight.
	SleepMs int    `json:"sleepMs,omitempty"`
	IP      string `json:"ip,omitempty"`
}

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    func(a *skel.CmdArgs) error { return handle("ADD", a) },
		Del:    func(a *skel.CmdArgs) error { return handle("DEL", a) },
		Check:  func(a *skel.CmdArgs) error { return handle("CHECK", a) },
		GC:     func(a *skel.CmdArgs) error { return handle("GC", a) },
		Status: func(a *skel.CmdArgs) error { return handle("STATUS", a) },
	}, version.All, "recorder: a CNI plugin that records what it receives")
}

func handle(command string, args *skel.CmdArgs) error {
	var c conf
	if err := json.Unmarshal(args.StdinData, &c); err != nil {
		return types.NewError(types.ErrDecodingFailure, "recorder: decoding config", err.Error())
	}
	if c.RecordDir == "" {
		return types.NewError(types.ErrInvalidNetworkConfig, "recorder: recordDir is required", "")
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "CNI_") {
			env[k] = v
		}
	}
	rec := recording.Record{Command: command, Env: env, Stdin: string(args.StdinData), Seq: time.Now().UnixNano(), PID: os.Getpid()}
	if err := recording.Write(c.RecordDir, rec); err != nil {
		return types.NewError(types.ErrIOFailure, "recorder: writing record", err.Error())
	}
	if command == "ADD" && c.SleepMs > 0 {
		time.Sleep(time.Duration(c.SleepMs) * time.Millisecond)
	}
	if e, ok := c.Errors[command]; ok && c.scriptedErrorsActive() {
		return &e
	}
	if command != "ADD" {
		return nil
	}
	result, err := addResult(c, args)
	if err != nil {
		return err
	}
	return types.PrintResult(result, c.CNIVersion)
}

func addResult(c conf, args *skel.CmdArgs) (types.Result, error) {
	if len(c.Result) > 0 {
		r, err := current.NewResult(c.Result)
		if err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, "recorder: scripted result", err.Error())
		}
		return r, nil
	}
	if c.RawPrevResult != nil {
		if err := version.ParsePrevResult(&c.PluginConf); err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, "recorder: prevResult", err.Error())
		}
		return c.PrevResult, nil
	}
	ip := c.IP
	if ip == "" {
		ip = "192.0.2.2/24"
	}
	addr, err := types.ParseCIDR(ip)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("recorder: ip %q", ip), err.Error())
	}
	idx := 0
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	return &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{{Name: args.IfName, Mac: mac.String(), Sandbox: args.Netns}},
		IPs:        []*current.IPConfig{{Interface: &idx, Address: *addr}},
	}, nil
}

func (c conf) scriptedErrorsActive() bool {
	if c.ErrorsWhile == "" {
		return true
	}
	_, err := os.Stat(c.ErrorsWhile)
	return err == nil
}
