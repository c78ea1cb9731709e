package plugin

import (
	"fmt"
	"io"

	"github.com/polynet-cni/polynet/internal/buildinfo"
)

// PrintVersionFlag handles `--version`, `-version` and `-v` as the first argument,
// which upstream's binaries accept too. It reports whether it printed, in which
// case the caller exits 0.
func PrintVersionFlag(args []string, name string, w io.Writer) bool {
	if len(args) < 2 {
		return false
	}
	switch args[1] {
	case "--version", "-version", "-v":
		fmt.Fprintf(w, "%s %s\n", name, buildinfo.Get())
		return true
	}
	return false
}
