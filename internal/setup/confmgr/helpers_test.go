package confmgr

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polynet-cni/polynet/internal/config"
)

const (
	waitFor  = 5 * time.Second
	waitStep = 20 * time.Millisecond
)

// logSink records log lines so tests can check that a Warn was given.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *logSink) WithGroup(string) slog.Handler            { return s }

func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, b.String())
	return nil
}

// has reports whether a line at level contains every part.
func (s *logSink) has(level slog.Level, parts ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if !strings.HasPrefix(l, level.String()+" ") {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// env is one test's folders and daemon configuration.
type env struct {
	auto, conf string
	d          *config.DaemonConf
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{auto: t.TempDir(), conf: t.TempDir()}
	e.d = &config.DaemonConf{
		CNIVersion:          "0.3.1",
		MultusConfigFile:    config.AutoConfig,
		CNIConfigDir:        e.conf,
		MultusAutoconfigDir: e.auto,
		SocketDir:           "/run/multus",
		Raw:                 map[string]json.RawMessage{},
	}
	return e
}

// run is a Manager running in a goroutine; the test's cleanup stops it and
// waits for Run to return.
type run struct {
	m      *Manager
	log    *logSink
	writes atomic.Int64
	errc   chan error
	cancel context.CancelFunc
}

// start runs a manager for d.
func start(t *testing.T, d *config.DaemonConf, timeout time.Duration) *run {
	t.Helper()
	return startOpts(t, Options{Daemon: d, PrimaryTimeout: timeout})
}

// startOpts runs a manager made from o, with the run's log sink.
func startOpts(t *testing.T, o Options) *run {
	t.Helper()
	r := &run{log: &logSink{}, errc: make(chan error, 1)}
	o.Log = slog.New(r.log)
	r.m = New(o)
	r.m.onWrite = func(string) { r.writes.Add(1) }
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.errc <- r.m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.errc:
		case <-time.After(waitFor):
			t.Error("Run did not return after its context ended")
		}
	})
	return r
}

// stop ends Run and returns its result.
func (r *run) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.errc:
		r.errc <- err // for the cleanup
		return err
	case <-time.After(waitFor):
		t.Fatal("Run did not return after its context ended")
		return nil
	}
}

// result waits for Run to return by itself.
func (r *run) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.errc:
		r.errc <- err
		return err
	case <-time.After(waitFor):
		t.Fatal("Run did not return")
		return nil
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(waitStep)
	}
}

// consistently checks that cond holds throughout d: for effects that must
// not happen, which no deadline can prove.
func consistently(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
		time.Sleep(waitStep)
	}
}

// put writes a file atomically, as well-behaved CNI installers do, so that
// the manager never reads it half written.
func put(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".test.tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shim decodes a generated file into the shim's plugin object, unwrapping a
// .conflist; it is nil when the file is missing or unreadable.
func shim(path string) map[string]any {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var obj map[string]any
	if json.Unmarshal(b, &obj) != nil {
		return nil
	}
	if list, ok := obj["plugins"].([]any); ok && len(list) == 1 {
		obj, _ = list[0].(map[string]any)
	}
	return obj
}

// clusterNetwork is the generated file's clusterNetwork, "" when missing.
func clusterNetwork(path string) string {
	s, _ := shim(path)["clusterNetwork"].(string)
	return s
}

func conf(typ, version string) string {
	return fmt.Sprintf(`{"cniVersion":%q,"name":"net-%s","type":%q}`, version, typ, typ)
}
