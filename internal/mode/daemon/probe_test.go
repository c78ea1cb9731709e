package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/mode/socketapi"
)

// idle is a dispatcher the probes never reach.
type idle struct{}

func (idle) CNI(context.Context, *socketapi.Request) (json.RawMessage, error)      { return nil, nil }
func (idle) Delegate(context.Context, *socketapi.Request) (json.RawMessage, error) { return nil, nil }

// serveSocket serves a socket server in dir until the test ends.
func serveSocket(t *testing.T, dir string) *socketapi.Server {
	t.Helper()
	srv := socketapi.New(idle{}, socketapi.Options{SocketDir: dir, MaxInFlight: 1, MaxRequestBytes: 1 << 16, RequestTimeout: time.Second})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(); close(done) }()
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		<-done
	})
	return srv
}

// TestProbe: -probe healthz answers as soon as the socket serves; readyz only
// once the daemon is ready, and not while it shuts down; an unknown endpoint
// and a missing daemon are errors that say so.
func TestProbe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	conf := &config.DaemonConf{SocketDir: dir}
	ctx := context.Background()

	err := Probe(ctx, conf, "healthz")
	var unreachable *socketapi.UnreachableError
	if !errors.As(err, &unreachable) {
		t.Errorf("healthz with no daemon: %v, want an unreachable error", err)
	}

	srv := serveSocket(t, dir)
	tests := []struct {
		name     string
		ready    bool
		endpoint string
		wantErr  string // "" for success
	}{
		{"healthz before ready", false, "healthz", ""},
		{"readyz before ready", false, "readyz", "503"},
		{"readyz when ready", true, "readyz", ""},
		{"healthz when ready", true, "healthz", ""},
		{"unknown endpoint", true, "livez", "want healthz or readyz"},
		{"empty endpoint", true, "", "want healthz or readyz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.SetReady(tt.ready)
			err := Probe(ctx, conf, tt.endpoint)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Probe(%q): %v, want success", tt.endpoint, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Probe(%q): %v, want an error with %q", tt.endpoint, err, tt.wantErr)
			}
		})
	}

	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := Probe(ctx, conf, "readyz"); err == nil {
		t.Error("readyz after shutdown succeeded")
	}
}
