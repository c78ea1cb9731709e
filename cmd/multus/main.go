// Command multus is the thin CNI meta-plugin: the container runtime executes it for
// every pod, and it runs the whole engine in-process.
package main

import (
	"context"
	"os"
	"runtime"

	"github.com/polynet-cni/polynet/internal/buildinfo"
	"github.com/polynet-cni/polynet/internal/mode/thin"
	"github.com/polynet-cni/polynet/internal/plugin"
)

func main() {
	// Delegates and namespace work must stay on one OS thread (plugins' ns README).
	runtime.LockOSThread()
	if buildinfo.PrintVersionFlag(os.Args, "multus", os.Stdout) {
		return
	}
	os.Exit(plugin.Run(context.Background(), plugin.OS(), "multus: thin CNI meta-plugin", thin.Handler{}))
}
