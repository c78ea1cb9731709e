// Package thin is the thin plugin's handler: it builds the typed request and the
// configuration from the runtime's environment and stdin, wires the engine to its
// in-process adapters (the API server through package apiclient, delegates through
// libcni), runs the command and returns what to print.
package thin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/logging"
	"github.com/polynet-cni/polynet/internal/mode/nodeengine"
	"github.com/polynet-cni/polynet/internal/request"
)

// Handler runs one CNI command in-process.
type Handler struct {
	// Stderr receives logs when the configuration logs to stderr; nil is os.Stderr.
	Stderr io.Writer
	// ServiceAccountDir is where the in-cluster credentials (token, ca.crt) are
	// read from; empty is where the kubelet mounts them. Tests set it.
	ServiceAccountDir string
}

// Handle implements plugin.Handler.
func (h Handler) Handle(ctx context.Context, command string, stdin []byte, getenv func(string) string) ([]byte, error) {
	req, err := request.FromEnv(command, getenv, stdin)
	if err != nil {
		return nil, err
	}
	conf, err := config.ParsePlugin(stdin)
	if err != nil {
		return nil, err
	}
	log, closeLog := h.logger(conf)
	defer closeLog()
	o := nodeengine.Options{Log: log}
	if k := newLazyKube(conf, getenv); k != nil {
		k.serviceAccountDir = h.ServiceAccountDir
		k.log = log
		defer k.waitEvents() // before the log closes
		o.Kube = k
		// Read only for a pod that names ResourceClaims, when a network
		// asks for a device.
		o.Claims = k
	}
	return nodeengine.New(conf, req, o).Handle(ctx, req, conf)
}

// logger builds the request's logger from the configuration. A log file that
// cannot be opened must not stop pods from getting networks: the failure goes to
// stderr and logging carries on without the file.
func (h Handler) logger(conf *config.PluginConf) (*slog.Logger, func()) {
	stderr := h.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	maxAge, maxSize, maxBackups, compress := conf.LogOptions.Resolved()
	opts := logging.Options{
		Level: conf.LogLevel, ToStderr: conf.LogToStderr, File: conf.LogFile, Stderr: stderr,
		MaxAgeDays: maxAge, MaxSizeMB: maxSize, MaxBackups: maxBackups, Compress: compress,
	}
	log, closer, err := logging.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "multus: log file %s: %v; logging without it\n", conf.LogFile, err)
		opts.File = ""
		if log, closer, err = logging.New(opts); err != nil {
			return slog.New(slog.DiscardHandler), func() {}
		}
	}
	return log, func() { _ = closer.Close() }
}
