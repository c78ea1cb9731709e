// Command multus is the thin CNI meta-plugin: the container runtime executes it for
// every pod, and it runs the whole engine in-process.
package main

import (
	"context"
	"os"

	"github.com/polynet-cni/polynet/internal/plugin"
)

func main() {
	if plugin.PrintVersionFlag(os.Args, "multus", os.Stdout) {
		return
	}
	os.Exit(plugin.Run(context.Background(), plugin.OS(), "multus: thin CNI meta-plugin",
		plugin.NotImplemented{Binary: "multus"}))
}
