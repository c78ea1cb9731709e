// Command multus-daemon is the node agent of thick mode: it serves multus-shim's
// requests over a unix socket with informer-backed caches, and generates the
// shim's CNI configuration. It also answers the CNI VERSION command, so a runtime
// or an operator probing it by mistake gets a well-formed answer.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/polynet-cni/polynet/internal/buildinfo"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/logging"
	"github.com/polynet-cni/polynet/internal/mode/daemon"
	"github.com/polynet-cni/polynet/internal/plugin"
)

func main() {
	if buildinfo.PrintVersionFlag(os.Args, "multus-daemon", os.Stdout) {
		return
	}
	if os.Getenv("CNI_COMMAND") != "" {
		os.Exit(plugin.Run(context.Background(), plugin.OS(), "multus-daemon", plugin.NotImplemented{Binary: "multus-daemon"}))
	}
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "multus-daemon: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	path := flag.String("config", config.DefaultDaemonConfig, "path of daemon-config.json")
	probe := flag.String("probe", "", "ask the running daemon's socket for healthz or readyz and exit 0 if it answers 200 (for exec probes)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see -help)", flag.Arg(0))
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		return fmt.Errorf("reading the daemon config: %w", err)
	}
	conf, err := config.ParseDaemon(data)
	if err != nil {
		return err
	}
	if *probe != "" {
		return daemon.Probe(context.Background(), conf, *probe)
	}
	log, closer, err := logging.New(logOptions(conf))
	if err != nil {
		return fmt.Errorf("daemon log: %w", err)
	}
	defer closer.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return daemon.Run(ctx, conf, daemon.Options{NodeName: os.Getenv("MULTUS_NODE_NAME"), Log: log})
}

// logOptions is the daemon's logging as its configuration says, with
// upstream's rotation defaults for absent logOptions keys. The daemon logs to
// stderr when it has no log file, since a daemon that logs nowhere cannot be
// debugged.
func logOptions(conf *config.DaemonConf) logging.Options {
	maxAge, maxSize, maxBackups, compress := conf.LogOptions.Resolved()
	return logging.Options{
		Level: conf.LogLevel, ToStderr: conf.LogToStderr || conf.LogFile == "", File: conf.LogFile,
		MaxAgeDays: maxAge, MaxSizeMB: maxSize, MaxBackups: maxBackups, Compress: compress,
	}
}
