package thinentry

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/setup/confmgr"
	"github.com/polynet-cni/polynet/internal/setup/install"
)

// Env is what Run takes from its process besides the flags.
type Env struct {
	Getenv func(string) string
	Log    *slog.Logger
	// PrimaryTimeout bounds the wait for a primary configuration (default:
	// the configuration manager's, 2 minutes); past it Run fails, and the
	// kubelet restarts the container with its back-off.
	PrimaryTimeout time.Duration
}

// Run installs the plugin, writes its kubeconfig and configuration, then keeps
// both right until ctx ends (unless --skip-config-watch, which stops following
// the primary but still refreshes the kubeconfig, since an expired token
// breaks every pod). With --cleanup-config-on-exit it removes what it wrote
// to /etc/cni/net.d on the way out; the plugin binary stays, for the DEL of
// pods that exist.
func Run(ctx context.Context, o *Options, env Env) error {
	log := env.Log
	for flagName, dir := range map[string]string{"--cni-bin-dir": o.CNIBinDir, "--cni-conf-dir": o.CNIConfDir} {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("%s %s is not a folder: mount the host's folder there (%v)", flagName, dir, err)
		}
	}
	if !o.SkipBinaryCopy {
		if err := installBinaries(o, log); err != nil {
			return err
		}
	}
	for _, dir := range []string{filepath.Join(o.CNIConfDir, "multus.d"), o.MultusCNIConfDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("making %s: %w", dir, err)
		}
	}
	kc, err := o.kubeconfig(env)
	if err != nil {
		return err
	}
	if _, err := kc.Sync(); err != nil {
		return fmt.Errorf("writing the plugin's kubeconfig: %w", err)
	}
	mgr := confmgr.New(confmgr.Options{
		Daemon: o.daemonConf(), Log: log, PrimaryTimeout: env.PrimaryTimeout, Thin: &confmgr.Thin{Kubeconfig: o.KubeconfigHost},
		Once: o.SkipConfigWatch, RenamePrimary: o.RenameConfFile,
	})
	// The refresher runs until ctx ends, or until the manager fails.
	kctx, stopRefresh := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); kc.Run(kctx) }()
	err = mgr.Run(ctx)
	if err == nil && o.SkipConfigWatch {
		log.Info("configuration in place; not following the primary (--skip-config-watch)", "file", mgr.Path())
		<-ctx.Done()
		mgr.Shutdown()
	}
	stopRefresh()
	wg.Wait()
	if o.CleanupConfigOnExit {
		if rerr := kc.Remove(); rerr != nil {
			log.Error("cannot remove the plugin's kubeconfig", "file", kc.Path, "error", rerr)
		} else {
			log.Info("removed the plugin's kubeconfig (--cleanup-config-on-exit)", "file", kc.Path)
		}
	}
	return err
}

// installBinaries installs the thin plugin, and passthru from beside it when
// the image has it (auxiliary CNI chains name it).
func installBinaries(o *Options, log *slog.Logger) error {
	srcs := []string{o.MultusBinFile}
	if p := filepath.Join(filepath.Dir(o.MultusBinFile), "passthru"); p != o.MultusBinFile {
		if _, err := os.Stat(p); err == nil {
			srcs = append(srcs, p)
		}
	}
	for _, src := range srcs {
		r, err := install.Binary(src, o.CNIBinDir)
		if err != nil {
			return err
		}
		log.Info("binary " + r.String())
	}
	return nil
}

// kubeconfig is the plugin's kubeconfig keeper for these flags.
func (o *Options) kubeconfig(env Env) (*install.Kubeconfig, error) {
	server, err := install.InClusterServer(env.Getenv)
	if err != nil && !o.Probe {
		return nil, err
	}
	return &install.Kubeconfig{
		Path:              filepath.Join(o.CNIConfDir, "multus.d", filepath.Base(o.KubeconfigHost)),
		ServiceAccountDir: o.ServiceAccountDir, Server: server, Insecure: o.SkipTLSVerify, Log: env.Log,
	}, nil
}

// daemonConf is the configuration manager's view of the flags; the plugin
// keys go into Raw, which the manager copies into the generated file.
func (o *Options) daemonConf() *config.DaemonConf {
	raw := map[string]any{"logToStderr": o.LogToStderr}
	set := func(key string, v any, ok bool) {
		if ok {
			raw[key] = v
		}
	}
	set("namespaceIsolation", true, o.NamespaceIsolation)
	set("globalNamespaces", o.GlobalNamespaces, o.GlobalNamespaces != "")
	set("logLevel", o.LogLevel, o.LogLevel != "")
	set("logFile", o.LogFile, o.LogFile != "")
	set("binDir", o.AdditionalBinDir, o.AdditionalBinDir != "")
	set("readinessindicatorfile", o.ReadinessIndicator, o.ReadinessIndicator != "")
	d := &config.DaemonConf{
		CNIVersion: o.CNIVersion, MultusConfigFile: o.MultusConfFile, CNIConfigDir: o.CNIConfDir,
		MultusAutoconfigDir: o.AutoconfigDir, MultusMasterCNI: o.MasterCNIFileName, ForceCNIVersion: o.ForceCNIVersion,
		OverrideNetworkName: o.OverrideNetworkName, RemoveConfigOnShutdown: o.CleanupConfigOnExit,
		Raw: map[string]json.RawMessage{},
	}
	for k, v := range raw {
		d.Raw[k], _ = json.Marshal(v)
	}
	return d
}

// Probe checks what the plugin needs on the host: the kubeconfig carries the
// current token (the kubelet may have rotated it since) and a configuration of
// ours is in --cni-conf-dir. It is the DaemonSet's readiness and liveness
// check: a refresher that stopped working gets the container restarted before
// the old token expires.
func Probe(o *Options, env Env) error {
	kc, err := o.kubeconfig(env)
	if err != nil {
		return err
	}
	if err := kc.Fresh(); err != nil {
		return err
	}
	names := []string{"00-multus.conf", "00-multus.conflist"}
	if o.MultusConfFile != config.AutoConfig {
		names = []string{filepath.Base(o.MultusConfFile)}
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(o.CNIConfDir, n)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("no configuration of ours in %s (looked for %v)", o.CNIConfDir, names)
}
