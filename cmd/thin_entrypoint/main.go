// Command thin_entrypoint is the main container of the thin DaemonSet: it
// installs the thin plugin, keeps its kubeconfig fresh as the ServiceAccount
// token rotates, and generates its CNI configuration from the primary's.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/polynet-cni/polynet/internal/buildinfo"
	"github.com/polynet-cni/polynet/internal/setup/thinentry"
)

func main() {
	if buildinfo.PrintVersionFlag(os.Args, "thin_entrypoint", os.Stdout) {
		return
	}
	o, err := thinentry.Parse(os.Args[1:], os.Stdout)
	if errors.Is(err, thinentry.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "thin_entrypoint: %v\n", err)
		os.Exit(2)
	}
	env := thinentry.Env{Getenv: os.Getenv, Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	if o.Probe {
		if err := thinentry.Probe(o, env); err != nil {
			fmt.Fprintf(os.Stderr, "thin_entrypoint probe: %v\n", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		// A second signal while cleaning up exits at once, as upstream's does.
		<-ctx.Done()
		stop()
		again := make(chan os.Signal, 1)
		signal.Notify(again, syscall.SIGTERM, syscall.SIGINT)
		<-again
		os.Exit(1)
	}()
	if err := thinentry.Run(ctx, o, env); err != nil {
		env.Log.Error("thin_entrypoint failed", "error", err)
		os.Exit(1)
	}
}
