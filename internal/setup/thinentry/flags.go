// Package thinentry is thin_entrypoint: the main container of the thin
// DaemonSet. It installs the thin plugin on the host, writes the plugin's
// kubeconfig from the pod's ServiceAccount token and keeps it fresh as the
// token rotates, and generates the thin plugin's CNI configuration from the
// primary network's, with thick mode's configuration manager, keeping it right
// while it runs. It accepts every flag upstream's thin_entrypoint accepts.
package thinentry

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/setup/install"
)

// Options are thin_entrypoint's flags, upstream's names and defaults.
type Options struct {
	CNIBinDir           string
	CNIConfDir          string
	CNIVersion          string
	MultusConfFile      string
	MultusBinFile       string
	MultusCNIConfDir    string
	SkipBinaryCopy      bool
	KubeconfigHost      string
	MasterCNIFileName   string
	NamespaceIsolation  bool
	GlobalNamespaces    string
	AutoconfigDir       string
	LogToStderr         bool
	LogLevel            string
	LogFile             string
	OverrideNetworkName bool
	CleanupConfigOnExit bool
	SkipConfigWatch     bool
	RenameConfFile      bool
	ReadinessIndicator  string
	AdditionalBinDir    string
	SkipTLSVerify       bool
	ForceCNIVersion     bool
	ServiceAccountDir   string
	Probe               bool
}

// ErrHelp is returned by Parse for -h and --help, after the usage was printed.
var ErrHelp = flag.ErrHelp

// Parse reads the command line (without the program name). An unknown flag,
// a stray argument or a value out of range is an error naming it.
func Parse(args []string, usage io.Writer) (*Options, error) {
	o := &Options{}
	fs := flag.NewFlagSet("thin_entrypoint", flag.ContinueOnError)
	fs.StringVar(&o.CNIBinDir, "cni-bin-dir", "/host/opt/cni/bin", "the host's CNI bin folder, as mounted in this container")
	fs.StringVar(&o.CNIConfDir, "cni-conf-dir", "/host/etc/cni/net.d", "the host's CNI configuration folder, as mounted in this container")
	fs.StringVar(&o.CNIVersion, "cni-version", "", "cniVersion of the generated configuration (default: the primary's)")
	fs.StringVar(&o.MultusConfFile, "multus-conf-file", "auto", `"auto" to generate the configuration from the primary, or a file to copy into --cni-conf-dir`)
	fs.StringVar(&o.MultusBinFile, "multus-bin-file", "/usr/src/multus-cni/bin/multus", "the thin plugin binary to install")
	fs.StringVar(&o.MultusCNIConfDir, "multus-cni-conf-dir", "/host/etc/cni/multus/net.d", "folder of on-disk network configurations, made if missing")
	fs.BoolVar(&o.SkipBinaryCopy, "skip-multus-binary-copy", false, "do not install the plugin binary")
	fs.StringVar(&o.KubeconfigHost, "multus-kubeconfig-file-host", "/etc/cni/net.d/multus.d/multus.kubeconfig", "the kubeconfig's path on the host, written into the configuration")
	fs.StringVar(&o.MasterCNIFileName, "multus-master-cni-file-name", "", "the primary configuration's file name (default: the first in --multus-autoconfig-dir)")
	fs.BoolVar(&o.NamespaceIsolation, "namespace-isolation", false, "pods may only use networks of their own namespace (and --global-namespaces)")
	fs.StringVar(&o.GlobalNamespaces, "global-namespaces", "", "comma-separated namespaces whose networks every pod may use")
	fs.StringVar(&o.AutoconfigDir, "multus-autoconfig-dir", "/host/etc/cni/net.d", "folder searched for the primary configuration")
	fs.BoolVar(&o.LogToStderr, "multus-log-to-stderr", true, "the plugin logs to stderr")
	fs.StringVar(&o.LogLevel, "multus-log-level", "", "the plugin's log level: debug, verbose, error or panic")
	fs.StringVar(&o.LogFile, "multus-log-file", "", "the plugin's log file on the host")
	fs.BoolVar(&o.OverrideNetworkName, "override-network-name", false, "name the generated network after the primary")
	fs.BoolVar(&o.CleanupConfigOnExit, "cleanup-config-on-exit", false, "remove the generated configuration and kubeconfig on exit")
	fs.BoolVar(&o.SkipConfigWatch, "skip-config-watch", false, "generate the configuration once instead of following the primary (the kubeconfig is still kept fresh)")
	fs.BoolVar(&o.RenameConfFile, "rename-conf-file", false, "rename the primary configuration to <name>.old once ours is in place")
	fs.StringVar(&o.ReadinessIndicator, "readiness-indicator-file", "", "file on the host the plugin waits for before ADD")
	fs.StringVar(&o.AdditionalBinDir, "additional-bin-dir", "", "the plugin's binDir, where it finds delegate plugins on the host")
	fs.BoolVar(&o.SkipTLSVerify, "skip-tls-verify", false, "the kubeconfig skips verifying the API server's certificate (not recommended)")
	fs.BoolVar(&o.ForceCNIVersion, "force-cni-version", false, "rewrite the primary's cniVersion to --cni-version (tests only)")
	fs.StringVar(&o.ServiceAccountDir, "service-account-dir", install.DefaultServiceAccountDir, "folder of the ServiceAccount token and ca.crt (ours)")
	fs.BoolVar(&o.Probe, "probe", false, "check that the configuration is in place and the kubeconfig carries the current token, then exit (ours; for probes, with the same flags)")
	if err := install.ParseFlags(fs, args, usage, "Usage: thin_entrypoint [flags]\n\n"+
		"Installs the thin Multus plugin on the host, writes its kubeconfig and keeps it fresh,\nand generates its CNI configuration."); err != nil {
		return nil, err
	}
	return o, o.validate()
}

func (o *Options) validate() error {
	if o.CNIVersion != "" && !config.KnownCNIVersion(o.CNIVersion) {
		return fmt.Errorf("--cni-version %q: not a CNI version we speak (0.1.0 to 1.1.0)", o.CNIVersion)
	}
	if o.ForceCNIVersion && o.CNIVersion == "" {
		return errors.New("--force-cni-version needs --cni-version: there is no version to force")
	}
	if o.LogLevel != "" && !config.KnownLogLevel(o.LogLevel) {
		return fmt.Errorf("--multus-log-level %q: want debug, verbose, error or panic", o.LogLevel)
	}
	if o.MultusConfFile != config.AutoConfig && !filepath.IsAbs(o.MultusConfFile) {
		return fmt.Errorf(`--multus-conf-file %q: want "auto" or an absolute path`, o.MultusConfFile)
	}
	for flagName, p := range map[string]string{
		"--cni-bin-dir": o.CNIBinDir, "--cni-conf-dir": o.CNIConfDir, "--multus-autoconfig-dir": o.AutoconfigDir,
		"--multus-kubeconfig-file-host": o.KubeconfigHost, "--service-account-dir": o.ServiceAccountDir,
	} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("%s %q: want an absolute path", flagName, p)
		}
	}
	if strings.Contains(o.MasterCNIFileName, "/") {
		return fmt.Errorf("--multus-master-cni-file-name %q: want a file name in --multus-autoconfig-dir, not a path", o.MasterCNIFileName)
	}
	return nil
}
