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

// ParseFlags parses an installer's command line with fs, which must be set
// up with flag.ContinueOnError: -h and --help print header and the flags to
// usage and return flag.ErrHelp; an unknown flag or a stray argument is an
// error naming it.
func ParseFlags(fs *flag.FlagSet, args []string, usage io.Writer, header string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(usage, "%s\n\nFlags:\n", header)
		fs.SetOutput(usage)
		fs.PrintDefaults()
		return err
	}
	if err != nil {
		return fmt.Errorf("%s (see --help)", strings.Replace(err.Error(), "flag provided but not defined", "unknown flag", 1))
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: %s takes only flags (see --help)", fs.Arg(0), fs.Name())
	}
	return nil
}

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
	for _, name := range []string{"t", "type"} {
		fs.StringVar(&o.Type, name, "", "thin or thick: which plugin to install (required)")
	}
	for _, name := range []string{"d", "dest-dir"} {
		fs.StringVar(&o.DestDir, name, "/host/opt/cni/bin", "the host's CNI bin folder, as mounted in this container")
	}
	fs.StringVar(&o.SourceDir, "source-dir", DefaultSourceDir, "folder holding the binaries to install")
	if err := ParseFlags(fs, args, usage, "Usage: install_multus -t thin|thick [-d DIR]\n\n"+
		"Installs the plugin the container runtime runs for every pod (multus for thin,\nmultus-shim for thick) and passthru "+
		"into the host's CNI bin folder, atomically:\na running copy is never written over, and an identical one is left alone."); err != nil {
		return nil, err
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
