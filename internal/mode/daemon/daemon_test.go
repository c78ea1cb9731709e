package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/polynet-cni/polynet/internal/adapter/store"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/mode/socketapi"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/test/recording"
)

// needRoot skips tests of Run, which refuses to start as another user.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("Run needs root")
	}
}

// buildRecorder builds the recording test plugin into dir.
func buildRecorder(t *testing.T, dir string) {
	t.Helper()
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "recorder"), "github.com/polynet-cni/polynet/test/plugins/recorder").CombinedOutput()
	if err != nil {
		t.Fatalf("building the recorder plugin: %v\n%s", err, out)
	}
}

// freePort returns a TCP port free on every address at the time of asking.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// daemonConf writes what Run needs under dir and returns the configuration;
// extra are more top-level keys, as JSON text with a leading comma.
func daemonConf(t *testing.T, dir, kubeconfig, extra string) *config.DaemonConf {
	t.Helper()
	netd := filepath.Join(dir, "net.d")
	if err := os.MkdirAll(netd, 0o755); err != nil {
		t.Fatal(err)
	}
	// A multusConfigFile already in the CNI configuration folder leaves the
	// configuration manager nothing to do.
	own := filepath.Join(netd, "00-multus.conf")
	if err := os.WriteFile(own, []byte(`{"cniVersion":"1.0.0","name":"multus-cni-network","type":"multus-shim"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`{"cniVersion":"1.0.0","socketDir":%q,"cniConfigDir":%q,"multusConfigFile":%q,"kubeconfig":%q,
		"cniDir":%q,"cacheSyncTimeout":"1m","shutdownTimeout":"10s","logLevel":"debug"%s}`,
		filepath.Join(dir, "run"), netd, own, kubeconfig, filepath.Join(dir, "cni"), extra)
	return parseDaemon(t, doc)
}

// TestRunServes: Run fills its caches, serves the socket (readyz), runs an ADD
// for the shim with the request's own environment and the daemon's keys laid
// over, reads the pod from the cache, patches its network-status, exposes
// metrics on the configured address, and stops cleanly when its context ends.
func TestRunServes(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	buildRecorder(t, bin)
	api := newMiniAPI(t, false, pod("team-a", "web", "uid-1", "node1"))
	port := freePort(t)
	conf := daemonConf(t, dir, api.kubeconfig(t, dir), fmt.Sprintf(`,"metricsAddress":"127.0.0.1","metricsPort":%d,"binDir":%q`, port, bin))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() {
		ran <- Run(ctx, conf, Options{NodeName: "node1", Log: discardLog(), Registry: prometheus.NewRegistry()})
	}()
	waitFor(t, "the daemon to be ready", func() bool {
		select {
		case err := <-ran:
			t.Fatalf("Run ended before serving: %v", err)
		default:
		}
		return Probe(ctx, conf, "readyz") == nil
	})

	records := filepath.Join(dir, "records")
	shimConf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"multus-cni-network","type":"multus-shim",
		"delegates":[{"cniVersion":"1.0.0","name":"cluster","type":"recorder","recordDir":%q}]}`, records)
	client := socketapi.Client{Socket: socketapi.SocketPath(conf.SocketDir), ConnectTimeout: 5 * time.Second, RequestTimeout: time.Minute}
	resp, err := client.Do(ctx, socketapi.PathCNI, &socketapi.Request{
		Env: map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "sandbox1", "CNI_NETNS": "/var/run/netns/sandbox1",
			"CNI_IFNAME": "eth0", "CNI_PATH": "/nonexistent", "CNI_ARGS": "K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=web;K8S_POD_UID=uid-1"},
		Config: []byte(shimConf),
	})
	if err != nil {
		t.Fatalf("ADD through the socket: %v", err)
	}
	var res struct {
		Interfaces []struct{ Name, Sandbox string } `json:"interfaces"`
	}
	if err := json.Unmarshal(resp.Result, &res); err != nil || len(res.Interfaces) != 1 || res.Interfaces[0].Name != "eth0" {
		t.Errorf("ADD result %s (%v), want the recorder's interface eth0", resp.Result, err)
	}

	recs, err := recording.Read(records)
	if err != nil || len(recs) != 1 {
		t.Fatalf("recorder invocations %d (%v), want 1", len(recs), err)
	}
	env := recs[0].Env
	gotEnv := []string{recs[0].Command, env["CNI_CONTAINERID"], env["CNI_NETNS"], env["CNI_IFNAME"], env["CNI_PATH"]}
	wantEnv := []string{"ADD", "sandbox1", "/var/run/netns/sandbox1", "eth0", bin + string(os.PathListSeparator) + "/nonexistent"}
	if diff := cmp.Diff(wantEnv, gotEnv); diff != "" {
		t.Errorf("delegate's [command containerID netns ifname path] (-want +got):\n%s", diff)
	}
	if rec, err := store.New(conf.CNIDir).Load("sandbox1"); err != nil || rec.Pod != (podnet.PodRef{Namespace: "team-a", Name: "web", UID: "uid-1"}) {
		t.Errorf("attachment record in the daemon's cniDir: %+v, %v", rec, err)
	}

	api.mu.Lock()
	patches, reads := api.patches, api.reads
	api.mu.Unlock()
	if len(patches) != 1 || patches[0].Path != "/api/v1/namespaces/team-a/pods/web/status" || !strings.Contains(string(patches[0].Body), `"uid":"uid-1"`) {
		t.Errorf("status patches %+v, want one of team-a/web with its UID", patches)
	}
	if len(reads) != 0 {
		t.Errorf("reads of single objects %+v, want none: the pod is in the cache", reads)
	}

	metrics := get(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	for _, want := range []string{
		`multus_requests_total{command="ADD",endpoint="/cni",result="success"} 1`,
		`multus_kubernetes_api_requests_total{code="200",method="PATCH"} 1`,
		`multus_attachment_records 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run after its context ended: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context ended")
	}
	if err := Probe(context.Background(), conf, "healthz"); err == nil {
		t.Error("the socket still answers after Run returned")
	}
}

// get fetches url and returns the body of a 200 answer.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(body)
}

// TestRunFailsToStart: a daemon that cannot fill its caches, has no
// credentials, or is asked for what it does not do, fails start-up with an
// error saying why, and never creates its socket.
func TestRunFailsToStart(t *testing.T) {
	needRoot(t)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) *config.DaemonConf
		want  string
	}{
		{"caches do not sync", func(t *testing.T, dir string) *config.DaemonConf {
			c := daemonConf(t, dir, newMiniAPI(t, true).kubeconfig(t, dir), "")
			c.CacheSyncTimeout.Duration = time.Second
			return c
		}, "did not sync within 1s"},
		{"no credentials", func(t *testing.T, dir string) *config.DaemonConf {
			return daemonConf(t, dir, "", "")
		}, "kubernetes credentials"},
		{"kubeconfig missing", func(t *testing.T, dir string) *config.DaemonConf {
			return daemonConf(t, dir, filepath.Join(dir, "missing-kubeconfig"), "")
		}, "missing-kubeconfig"},
		{"per-node certificates", func(t *testing.T, dir string) *config.DaemonConf {
			return daemonConf(t, dir, newMiniAPI(t, false).kubeconfig(t, dir),
				`,"perNodeCertificate":{"enabled":true,"bootstrapKubeconfig":"/etc/kb","certDir":"/var/lib/certs"}`)
		}, "perNodeCertificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := tt.setup(t, dir)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := Run(ctx, conf, Options{NodeName: "node1", Log: discardLog()})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run: %v, want an error with %q", err, tt.want)
			}
			if _, err := os.Stat(conf.SocketDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket folder after a failed start: %v, want none", err)
			}
		})
	}
}

// startMetricsFor runs startMetrics for conf until the test ends.
func startMetricsFor(t *testing.T, conf *config.DaemonConf) (*http.Server, error) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "multus_test_total", Help: "t"}))
	var g errgroup.Group
	s, err := startMetrics(&g, conf, reg)
	if s != nil {
		t.Cleanup(func() {
			_ = s.Shutdown(context.Background())
			if err := g.Wait(); err != nil {
				t.Errorf("metrics server: %v", err)
			}
		})
	}
	return s, err
}

// status is the status code of a GET of url, or 0 when nothing answers.
func status(url string) int {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// hostAddress is an address of this host other than loopback, or "".
func hostAddress() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return ""
}

// TestMetricsListener: /metrics is served on metricsAddress:metricsPort; an
// unset address means every address of the host, as upstream listens; pprof
// shares the listener only when enabled; no port, no listener.
func TestMetricsListener(t *testing.T) {
	other := hostAddress()
	tests := []struct {
		name        string
		address     string
		pprof       bool
		wantOnOther bool
	}{
		{"loopback only", "127.0.0.1", false, false},
		{"every address", "", false, true},
		{"with pprof", "127.0.0.1", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := freePort(t)
			conf := &config.DaemonConf{MetricsAddress: tt.address, MetricsPort: &port, EnablePprof: tt.pprof}
			if _, err := startMetricsFor(t, conf); err != nil {
				t.Fatal(err)
			}
			base := "http://127.0.0.1:" + strconv.Itoa(port)
			if got := get(t, base+"/metrics"); !strings.Contains(got, "multus_test_total 0") {
				t.Errorf("/metrics does not serve the registry:\n%s", got)
			}
			wantPprof := http.StatusNotFound
			if tt.pprof {
				wantPprof = http.StatusOK
			}
			if got := status(base + "/debug/pprof/"); got != wantPprof {
				t.Errorf("/debug/pprof/: %d, want %d", got, wantPprof)
			}
			if other == "" {
				t.Log("no address besides loopback to try")
				return
			}
			got := status("http://" + net.JoinHostPort(other, strconv.Itoa(port)) + "/metrics")
			if (got == http.StatusOK) != tt.wantOnOther {
				t.Errorf("/metrics on %s: status %d, want reachable %v", other, got, tt.wantOnOther)
			}
		})
	}
}

// TestMetricsListenerOffOrTaken: without a port nothing listens; a port in use
// fails start-up with an error naming the listener.
func TestMetricsListenerOffOrTaken(t *testing.T) {
	s, err := startMetricsFor(t, &config.DaemonConf{})
	if s != nil || err != nil {
		t.Errorf("no metricsPort: server %v, error %v; want neither", s, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = startMetricsFor(t, &config.DaemonConf{MetricsAddress: "127.0.0.1", MetricsPort: &port})
	if err == nil || !strings.Contains(err.Error(), "metrics listener") {
		t.Errorf("port in use: %v, want a metrics listener error", err)
	}
}

// TestRestConfig: the client comes from the daemon's kubeconfig, with the
// daemon's user agent and rate limits. (client-go drops the kubeconfig's token
// for a plain-HTTP server, so the fake's is not checked here.)
func TestRestConfig(t *testing.T) {
	dir := t.TempDir()
	api := newMiniAPI(t, false)
	cfg, err := restConfig(&config.DaemonConf{Kubeconfig: api.kubeconfig(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	got := []any{cfg.Host, cfg.UserAgent, cfg.QPS, cfg.Burst}
	want := []any{api.srv.URL, "multus-daemon-polynet", float32(50), 100}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("[host user-agent qps burst] (-want +got):\n%s", diff)
	}
}

// TestRecordCount: the records gauge counts the attachment records in the
// daemon's cniDir.
func TestRecordCount(t *testing.T) {
	dir := t.TempDir()
	count := recordCount(&config.DaemonConf{CNIDir: dir})
	if got := count(); got != 0 {
		t.Errorf("empty cniDir: %v records, want 0", got)
	}
	st := store.New(dir)
	for _, id := range []string{"c1", "c2"} {
		if err := st.Save(&podnet.Record{ContainerID: id, IfName: "eth0", CNIVersion: "1.0.0"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := count(); got != 2 {
		t.Errorf("%v records, want 2", got)
	}
}

// TestPprofLoopbackByDefault: with metricsAddress unset, /metrics answers on
// every address of the host, as upstream's does, but pprof, which gives away
// memory contents and can run CPU profiles on demand, answers on loopback only;
// an address the operator sets carries both.
func TestPprofLoopbackByDefault(t *testing.T) {
	other := hostAddress()
	if other == "" {
		t.Skip("no address besides loopback to try")
	}
	tests := []struct {
		name         string
		address      string
		wantOnOther  int
		wantLoopback int
	}{
		{"metricsAddress unset", "", http.StatusNotFound, http.StatusOK},
		{"metricsAddress set", other, http.StatusOK, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := freePort(t)
			conf := &config.DaemonConf{MetricsAddress: tt.address, MetricsPort: &port, EnablePprof: true}
			if _, err := startMetricsFor(t, conf); err != nil {
				t.Fatal(err)
			}
			onOther := "http://" + net.JoinHostPort(other, strconv.Itoa(port))
			onLoopback := "http://127.0.0.1:" + strconv.Itoa(port)
			if got := status(onOther + "/metrics"); got != http.StatusOK {
				t.Errorf("/metrics on %s: %d, want 200", other, got)
			}
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/symbol"} {
				if got := status(onOther + path); got != tt.wantOnOther {
					t.Errorf("%s on %s: %d, want %d", path, other, got, tt.wantOnOther)
				}
				if got := status(onLoopback + path); got != tt.wantLoopback {
					t.Errorf("%s on 127.0.0.1: %d, want %d", path, got, tt.wantLoopback)
				}
			}
		})
	}
}
