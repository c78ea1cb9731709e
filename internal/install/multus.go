package install

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// DefaultSourceDir is where the image keeps every binary, upstream's path.
const DefaultSourceDir = "/usr/src/multus-cni/bin"

// MultusOptions are install_multus' flags: upstream's -t/--type and
// -d/--dest-dir, and our --source-dir.
type MultusOptions struct {
	Type      string
	DestDir   string
	SourceDir string
}

// ParseMultus reads install_multus' command line (without the program name).
func ParseMultus(args []string, usage io.Writer) (*MultusOptions, error) {
	o := &MultusOptions{}
	fs := flag.NewFlagSet("install_multus", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, name := range []string{"t", "type"} {
		fs.StringVar(&o.Type, name, "", "thin or thick: which plugin to install (required)")
	}
	for _, name := range []string{"d", "dest-dir"} {
		fs.StringVar(&o.DestDir, name, "/host/opt/cni/bin", "the host's CNI bin folder, as mounted in this container")
	}
	fs.StringVar(&o.SourceDir, "source-dir", DefaultSourceDir, "folder holding the binaries to install")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(usage, "Usage: install_multus -t thin|thick [-d DIR]\n\nInstalls the plugin the container runtime runs for every pod (multus for thin,\nmultus-shim for thick) and passthru into the host's CNI bin folder, atomically:\na running copy is never written over, and an identical one is left alone.\n\nFlags:")
		fs.SetOutput(usage)
		fs.PrintDefaults()
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%s (see --help)", strings.Replace(err.Error(), "flag provided but not defined", "unknown flag", 1))
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	if o.Type != "thin" && o.Type != "thick" {
		return nil, fmt.Errorf("-t/--type %q: want thin or thick", o.Type)
	}
	for flagName, p := range map[string]string{"-d/--dest-dir": o.DestDir, "--source-dir": o.SourceDir} {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("%s %q: want an absolute path", flagName, p)
		}
	}
	return o, nil
}

// Multus installs the per-pod plugin of o.Type and passthru, the first link of
// auxiliary CNI chains, which generated configurations name.
func Multus(o *MultusOptions) ([]Result, error) {
	plugin := "multus"
	if o.Type == "thick" {
		plugin = "multus-shim"
	}
	var out []Result
	for _, name := range []string{plugin, "passthru"} {
		r, err := Binary(filepath.Join(o.SourceDir, name), o.DestDir)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}
