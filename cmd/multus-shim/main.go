// Command multus-shim is the CNI plugin of thick mode: it forwards each request the
// container runtime makes to the node daemon over a unix socket.
package main

import (
	"context"
	"os"

	"github.com/polynet-cni/polynet/internal/buildinfo"
	"github.com/polynet-cni/polynet/internal/mode/shim"
	"github.com/polynet-cni/polynet/internal/plugin"
)

func main() {
	if buildinfo.PrintVersionFlag(os.Args, "multus-shim", os.Stdout) {
		return
	}
	os.Exit(plugin.Run(context.Background(), plugin.OS(), "multus-shim: forwards CNI requests to multus-daemon", shim.Handler{}))
}
