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
	"github.com/polynet-cni/polynet/internal/thininstall"
)

func main() {
	if buildinfo.PrintVersionFlag(os.Args, "thin_entrypoint", os.Stdout) {
		return
	}
	o, err := thininstall.Parse(os.Args[1:], os.Stdout)
	if errors.Is(err, thininstall.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "thin_entrypoint: %v\n", err)
		os.Exit(2)
	}
	env := thininstall.Env{Getenv: os.Getenv, Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	if o.Probe {
		if err := thininstall.Probe(o, env); err != nil {
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
	if err := thininstall.Run(ctx, o, env); err != nil {
		env.Log.Error("thin_entrypoint failed", "error", err)
		os.Exit(1)
	}
}
