package attach

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// auxiliaryChain builds upstream's auxiliary CNI chain: the plugins found in
// <folder of clusterNetwork>/<auxiliaryCNIChainName>/, run as an attachment of
// their own after every other, behind the passthru plugin, which gives them an
// empty previous result. Nothing is added when the folder has no plugin.
func auxiliaryChain(in Input) (*Planned, error) {
	name := in.Conf.AuxiliaryCNIChainName
	if name == "" {
		return nil, nil
	}
	if !strings.Contains(in.Conf.ClusterNetwork, "/") {
		return nil, &ConfigError{Network: name, Source: "auxiliaryCNIChainName",
			Err: fmt.Errorf("the auxiliary chain needs clusterNetwork to be a file or folder path, not %q", in.Conf.ClusterNetwork)}
	}
	extra, err := in.confs().Plugins(in.Conf.ClusterNetwork, name)
	if err != nil {
		return nil, &ConfigError{Network: name, Source: "auxiliary chain folder", Err: err}
	}
	if len(extra) == 0 {
		return nil, nil
	}
	plugins := append([]json.RawMessage{json.RawMessage(`{"type":"passthru","name":"passthru-cni"}`)}, extra...)
	// CHECK is off for the chain: its plugins act on other attachments'
	// interfaces (a sysctl of eth0, say), while CHECK would look for the
	// placeholder interface the chain runs under, which never exists.
	cfg, err := json.Marshal(map[string]any{"cniVersion": in.Conf.CNIVersion, "name": name, "disableCheck": true, "plugins": plugins})
	if err != nil {
		return nil, err
	}
	return &Planned{Attachment: podnet.Attachment{Network: name, Config: cfg}, Auxiliary: true}, nil
}
