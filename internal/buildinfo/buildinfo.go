// Package buildinfo holds the version and commit a binary was built from. The
// Makefile sets them with -ldflags -X; a plain `go build` falls back to the VCS
// stamp the Go toolchain records, so --version never prints nothing at all.
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Version and Commit are set at link time by the Makefile:
//
//	-X github.com/polynet-cni/polynet/internal/buildinfo.Version=v0.1.0
//	-X github.com/polynet-cni/polynet/internal/buildinfo.Commit=<sha>
var (
	Version = ""
	Commit  = ""
)

// Info is the identity of this build.
type Info struct {
	Version string
	Commit  string
	Dirty   bool
	Go      string
}

// Get returns the link-time values, completed from the toolchain's VCS stamp.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.modified":
				info.Dirty = s.Value == "true"
			}
		}
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}

// String formats the identity for `--version`, one line, the program's name first.
func (i Info) String() string {
	dirty := ""
	if i.Dirty {
		dirty = " (modified)"
	}
	return fmt.Sprintf("version %s, commit %s%s, %s", i.Version, i.Commit, dirty, i.Go)
}

// PrintVersionFlag handles `--version`, `-version` and `-v` as the first argument,
// which upstream's binaries accept too. It reports whether it printed, in which
// case the caller exits 0.
func PrintVersionFlag(args []string, name string, w io.Writer) bool {
	if len(args) < 2 {
		return false
	}
	switch args[1] {
	case "--version", "-version", "-v":
		fmt.Fprintf(w, "%s %s\n", name, Get())
		return true
	}
	return false
}
