// Command passthru is the first plugin of the auxiliary CNI chain: ADD answers an
// empty, valid result in the configuration's version, so the chained plugins after
// it (tuning and the like) get the previous result they require without any
// interface being made. Every other command does nothing. Upstream ships a plugin
// of this name for the same purpose, and generated configurations refer to it.
package main

import (
	"encoding/json"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    add,
		Del:    func(*skel.CmdArgs) error { return nil },
		Check:  func(*skel.CmdArgs) error { return nil },
		GC:     func(*skel.CmdArgs) error { return nil },
		Status: func(*skel.CmdArgs) error { return nil },
	}, version.VersionsStartingFrom("0.3.0"), "passthru: an empty first link for auxiliary CNI chains")
}

func add(args *skel.CmdArgs) error {
	var conf types.PluginConf
	if err := json.Unmarshal(args.StdinData, &conf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "passthru: decoding config", err.Error())
	}
	return types.PrintResult(&current.Result{CNIVersion: current.ImplementedSpecVersion}, conf.CNIVersion)
}
