package e2e

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/mode/socketapi"
	"github.com/polynet-cni/polynet/test/testbed"
)

// TestThickStatus: STATUS (CNI 1.1.0) through the shim answers from the daemon.
// With the daemon up and its readiness indicator in place it passes (the
// daemon's API server and the real bridge cluster network included); with the
// daemon's readiness indicator gone it fails with 50, "plugin not available",
// naming the file; once the file is back it passes again. Both ways the daemon
// may get its configuration hold: generating the shim's (multusConfigFile
// "auto", the thick manifest's) and copying one it is given.
func TestThickStatus(t *testing.T) {
	for _, generated := range []bool{true, false} {
		name := map[bool]string{true: "generated configuration", false: "given configuration"}[generated]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			indicator := filepath.Join(t.TempDir(), "ready")
			if err := os.WriteFile(indicator, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			daemonConf := map[string]any{"readinessindicatorfile": indicator}
			if !generated {
				given := filepath.Join(t.TempDir(), "00-given.conflist")
				if err := os.WriteFile(given, []byte(`{"cniVersion":"1.1.0","name":"multus-cni-network","plugins":[{"type":"multus-shim"}]}`), 0o644); err != nil {
					t.Fatal(err)
				}
				daemonConf["multusConfigFile"] = given
			}
			e.mode = "thick"
			e.daemon = testbed.StartDaemon(t, e.cp, testbed.DaemonOptions{Config: daemonConf})
			conf := e.multusConf("1.1.0", nil)
			if err := e.rt.Status(e.ctx, conf); err != nil {
				t.Errorf("STATUS with the daemon up and ready: %v\n%s", err, e.log())
			}
			if err := os.Remove(indicator); err != nil {
				t.Fatal(err)
			}
			err := e.rt.Status(e.ctx, conf)
			if err == nil {
				t.Fatalf("STATUS passed with the daemon's readiness indicator %s missing\n%s", indicator, e.log())
			}
			if ce := cniError(t, err); ce.Code != cnicode.PluginNotAvailable || !strings.Contains(ce.Msg, indicator) {
				t.Errorf("STATUS without the readiness indicator: %v, want code 50 naming %s", err, indicator)
			}
			if err := os.WriteFile(indicator, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := e.rt.Status(e.ctx, conf); err != nil {
				t.Errorf("STATUS once the readiness indicator is back: %v", err)
			}
		})
	}
}

// TestThickShimStaleSocket: the daemon crashed (SIGKILL), leaving its socket file
// behind with nothing listening. The shim's ADD, DEL and STATUS each fail with
// code 11, try again later, within the shim's connect timeout plus a margin for
// starting the process (a bound, not a benchmark: a refused connection is
// immediate). A restarted daemon replaces the stale socket and serves again.
func TestThickShimStaleSocket(t *testing.T) {
	const connectTimeout = 2 * time.Second
	const margin = 3 * time.Second
	e := thickEnv(t, nil)
	conf := e.multusConf("1.1.0", map[string]any{"daemonConnectTimeout": connectTimeout.String()})
	_, sb, _ := e.pod("pod-1", nil)
	e.daemon.Process.Kill()
	socket := socketapi.SocketPath(e.daemon.SocketDir)
	if info, err := os.Stat(socket); err != nil || info.Mode().Type() != os.ModeSocket {
		t.Fatalf("the crashed daemon's socket file: %v (%v), want a stale socket left behind", info, err)
	}
	if _, err := net.Dial("unix", socket); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dialling the stale socket: %v, want connection refused", err)
	}
	for _, tc := range []struct {
		command string
		run     func() error
	}{
		{"ADD", func() error { _, err := e.rt.Add(e.ctx, conf, sb); return err }},
		{"DEL", func() error { return e.rt.Del(e.ctx, conf, sb) }},
		{"STATUS", func() error { return e.rt.Status(e.ctx, conf) }},
	} {
		start := time.Now()
		err := tc.run()
		took := time.Since(start)
		if ce := cniError(t, err); ce.Code != cnicode.TryAgainLater {
			t.Errorf("%s with a stale socket: %v, want code 11", tc.command, err)
		}
		if took > connectTimeout+margin {
			t.Errorf("%s with a stale socket took %s, over the %s connect timeout plus %s", tc.command, took, connectTimeout, margin)
		}
		t.Logf("%s with a stale socket: code 11 in %s", tc.command, took.Round(time.Millisecond))
	}
	if err := e.daemon.Start(); err != nil {
		t.Fatal(err)
	}
	e.add(conf, sb)
	e.del(conf, sb)
}
