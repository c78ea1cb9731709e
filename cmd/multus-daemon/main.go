// Command multus-daemon is the node agent of thick mode. It answers the CNI VERSION
// command like the plugins do, so a runtime or an operator probing it by mistake
// gets a well-formed answer rather than a hang.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/polynet-cni/polynet/internal/plugin"
)

func main() {
	if plugin.PrintVersionFlag(os.Args, "multus-daemon", os.Stdout) {
		return
	}
	if os.Getenv("CNI_COMMAND") != "" {
		os.Exit(plugin.Run(context.Background(), plugin.OS(), "multus-daemon",
			plugin.NotImplemented{Binary: "multus-daemon"}))
	}
	fmt.Fprintln(os.Stderr, "multus-daemon: the node agent is not implemented yet")
	os.Exit(1)
}
