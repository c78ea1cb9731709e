// Command install_multus is the init container of both DaemonSets: it installs
// the plugin the container runtime runs for every pod (multus, or multus-shim
// for thick mode) and passthru into the host's CNI bin folder, atomically, and
// says what it did in one line.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/polynet-cni/polynet/internal/buildinfo"
	"github.com/polynet-cni/polynet/internal/setup/install"
)

func main() {
	if buildinfo.PrintVersionFlag(os.Args, "install_multus", os.Stdout) {
		return
	}
	o, err := install.ParseMultus(os.Args[1:], os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "install_multus: %v\n", err)
		os.Exit(2)
	}
	results, err := install.Multus(o)
	lines := make([]string, len(results))
	for i, r := range results {
		lines[i] = r.String()
	}
	if err != nil {
		lines = append(lines, "failed: "+err.Error())
	}
	fmt.Println("install_multus: " + strings.Join(lines, "; "))
	if err != nil {
		os.Exit(1)
	}
}
