package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/mode/socketapi"
	"github.com/polynet-cni/polynet/test/recording"
	"github.com/polynet-cni/polynet/test/testbed"
)

// thickEnv is a thick-mode env with a daemon of its own, which the test may stop,
// kill and restart.
func thickEnv(t *testing.T, daemonConfig map[string]any) *env {
	t.Helper()
	e := newEnv(t)
	e.mode = "thick"
	e.daemon = testbed.StartDaemon(t, e.cp, testbed.DaemonOptions{Config: daemonConfig})
	return e
}

// TestThickDaemonDown: with the daemon stopped, ADD fails fast with CNI code 11
// (try again later) and DEL fails too, retryably, instead of claiming a teardown
// that did not happen (upstream swallows it, #1239); once the daemon is back, the
// runtime's retried DEL cleans up fully.
func TestThickDaemonDown(t *testing.T) {
	const v = "1.0.0"
	e := thickEnv(t, nil)
	e.nad("sec", e.recorderConf(v, "sec", nil), nil)
	conf := e.multusConf(v, nil)
	_, sb, netns := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
	e.add(conf, sb)

	e.daemon.Process.Stop(15 * time.Second)
	_, sb2, _ := e.pod("pod-2", nil)
	start := time.Now()
	_, err := e.rt.Add(e.ctx, conf, sb2)
	if ce := cniError(t, err); ce.Code != cnicode.TryAgainLater {
		t.Errorf("ADD with the daemon down: %v, want code 11", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("ADD took %s to fail with the daemon down", took)
	}
	err = e.rt.Del(e.ctx, conf, sb)
	if ce := cniError(t, err); ce.Code != cnicode.TryAgainLater {
		t.Errorf("DEL with the daemon down: %v, want the retryable code 11, not success", err)
	}
	if got := links(t, netns); len(got) != 2 {
		t.Errorf("links %v changed while the daemon was down", got)
	}

	if err := e.daemon.Start(); err != nil {
		t.Fatal(err)
	}
	e.del(conf, sb)
	if got := links(t, netns); len(got) != 1 {
		t.Errorf("links left after the retried DEL: %v", got)
	}
	e.del(conf, sb2) // the runtime's DEL for the sandbox whose ADD failed
}

// TestThickDaemonKilledMidAdd: the daemon is killed while an ADD runs its
// delegates. The runtime's ADD fails retryably; after a restart, the runtime's DEL
// finds the record that ADD wrote before its first delegate and tears everything
// down: nothing leaks.
func TestThickDaemonKilledMidAdd(t *testing.T) {
	const v = "1.0.0"
	e := thickEnv(t, nil)
	e.nad("slow", e.recorderConf(v, "slow", map[string]any{"sleepMs": 3000}), nil)
	conf := e.multusConf(v, nil)
	_, sb, netns := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "slow"})
	done := make(chan error, 1)
	go func() { _, err := e.rt.Add(e.ctx, conf, sb); done <- err }()
	if _, err := recording.Await(e.recordDir, "ADD", 20*time.Second); err != nil {
		t.Fatalf("the delegate's ADD never began: %v\n%s", err, e.log())
	}
	e.daemon.Process.Kill()
	if ce := cniError(t, <-done); ce.Code != cnicode.TryAgainLater {
		t.Errorf("ADD cut short: %v, want code 11", ce)
	}
	if err := e.daemon.Start(); err != nil {
		t.Fatal(err)
	}
	e.del(conf, sb)
	if got := links(t, netns); len(got) != 1 {
		t.Errorf("links left: %v", got)
	}
	if dels := e.recordsFor("DEL"); len(dels) != 1 {
		t.Errorf("%d DELs of the half-added network, want 1", len(dels))
	}
}

// TestThickBurst adds and deletes 50 pods at once through a daemon that takes 4
// requests at a time (and 8 connections): the others wait for a slot, 8 in the
// daemon and the rest in the socket's backlog, so every pod is attached on the
// first try, none refused; nothing leaks. (A runtime that is refused with code
// 11 retries, as kubelet does, which the loop below would count.)
func TestThickBurst(t *testing.T) {
	const v = "1.0.0"
	const pods = 50
	e := thickEnv(t, map[string]any{"maxInFlight": 4})
	e.nad("sec", e.recorderConf(v, "sec", nil), nil)
	conf := e.multusConf(v, nil)
	sbs := make([]testbed.Sandbox, pods)
	for i := range pods {
		_, sbs[i], _ = e.pod(fmt.Sprintf("pod-%d", i), map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
	}
	var refused atomic.Int64
	retry := func(op func() error) error {
		for {
			err := op()
			var ce *types.Error
			if !errors.As(err, &ce) || ce.Code != cnicode.TryAgainLater {
				return err
			}
			refused.Add(1)
			time.Sleep(time.Duration(50+refused.Load()%100) * time.Millisecond)
		}
	}
	run := func(name string, op func(testbed.Sandbox) error) {
		var wg sync.WaitGroup
		for i := range pods {
			wg.Go(func() {
				if err := retry(func() error { return op(sbs[i]) }); err != nil {
					t.Errorf("%s of pod-%d: %v", name, i, err)
				}
			})
		}
		wg.Wait()
	}
	run("ADD", func(sb testbed.Sandbox) error { _, err := e.rt.Add(e.ctx, conf, sb); return err })
	if n := refused.Load(); n != 0 {
		t.Errorf("%d requests refused with code 11: past maxInFlight they should wait for a slot", n)
	}
	for i := range pods {
		if st := e.networkStatus(fmt.Sprintf("pod-%d", i)); len(st) != 2 {
			t.Errorf("pod-%d network-status %+v", i, st)
		}
	}
	run("DEL", func(sb testbed.Sandbox) error { return e.rt.Del(e.ctx, conf, sb) })
	if n := refused.Load(); n != 0 {
		t.Errorf("%d requests refused with code 11 in all", n)
	}
}

// TestThickGeneratedConfiguration: the daemon writes the shim's configuration
// (00-multus.conflist for CNI 1.1.0) once it serves, wrapping the primary it found,
// and writes it back when something else removes it.
func TestThickGeneratedConfiguration(t *testing.T) {
	e := thickEnv(t, nil)
	path := filepath.Join(e.daemon.Dir, "net.d", "00-multus.conflist")
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Plugins    []struct {
			Type            string `json:"type"`
			ClusterNetwork  string `json:"clusterNetwork"`
			DaemonSocketDir string `json:"daemonSocketDir"`
		} `json:"plugins"`
	}
	// The daemon writes it once it serves, in the background: wait for it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := json.Unmarshal([]byte(readFile(path)), &conf)
		if err == nil && len(conf.Plugins) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("generated configuration %s: %q (%v)", path, readFile(path), err)
		}
	}
	p := conf.Plugins[0]
	if conf.CNIVersion != "1.1.0" || p.Type != "multus-shim" || p.DaemonSocketDir != e.daemon.SocketDir ||
		p.ClusterNetwork != filepath.Join(e.daemon.Dir, "autoconf", "10-primary.conflist") {
		t.Errorf("generated configuration %+v", conf)
	}
	if err := os.Rename(path, path+".cilium_bak"); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path + ".cilium_bak")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the generated configuration was not restored after it was renamed away")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestThickSocketIsRootOnly: the socket's folder is 0700 and the socket 0600.
func TestThickSocketIsRootOnly(t *testing.T) {
	d := testbed.SharedDaemon(t)
	for path, want := range map[string]os.FileMode{d.SocketDir: 0o700, socketapi.SocketPath(d.SocketDir): 0o600} {
		info, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, info.Mode().Perm(), want)
		}
	}
}

// TestThickAPIUsage: once the caches have a pod and its NADs, the daemon's ADD
// reads neither from the API server, and writes once: the status patch. (Events
// go out asynchronously through the event broadcaster.)
func TestThickAPIUsage(t *testing.T) {
	const v = "1.0.0"
	e := thickEnv(t, nil)
	e.nad("sec", e.recorderConf(v, "sec", nil), nil)
	_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
	e.daemon.AwaitCached(t, "NetworkAttachmentDefinition", e.namespace, "sec", "")
	e.daemon.AwaitCached(t, "pod", e.namespace, "pod-1", sb.Pod.UID)
	before, err := e.cp.AuditEvents(e.daemon.User)
	if err != nil {
		t.Fatal(err)
	}
	e.add(e.multusConf(v, nil), sb)
	after, err := e.cp.AuditEvents(e.daemon.User)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, ev := range after[len(before):] {
		key := ev.Verb + " " + ev.Resource
		if ev.Subresource != "" {
			key += "/" + ev.Subresource
		}
		counts[key]++
	}
	if counts["get pods"] != 0 || counts["get network-attachment-definitions"] != 0 || counts["patch pods/status"] != 1 {
		t.Errorf("API requests during the ADD: %v; want no reads and one status patch", counts)
	}
	e.del(e.multusConf(v, nil), sb)
}

// TestThickDelegateEndpoint: upstream's /delegate, as multus-dynamic-networks-
// controller calls it, hot-plugs a network into a running pod with the requested
// ips, mac and cni-args; the hot-plugged attachment joins the sandbox's record, so
// the sandbox's own DEL tears it down too; /delegate DEL unplugs it.
func TestThickDelegateEndpoint(t *testing.T) {
	const v = "1.0.0"
	// /delegate carries no plugin configuration of ours: the node's cniDir comes
	// from the daemon's configuration, as it does in a real deployment.
	cniDir := filepath.Join(t.TempDir(), "cni")
	e := thickEnv(t, map[string]any{"cniDir": cniDir})
	e.cniDir = cniDir
	conf := e.multusConf(v, nil)
	pod, sb, _ := e.pod("pod-1", nil)
	e.add(conf, sb)
	client := socketapi.Client{Socket: socketapi.SocketPath(e.daemon.SocketDir), ConnectTimeout: time.Second, RequestTimeout: time.Minute}
	hot := e.recorderConf(v, "hot", map[string]any{"capabilities": map[string]bool{"ips": true, "mac": true}})
	args := map[string]any{"foo": "bar"}
	env := testbed.CNIEnv("ADD", testbed.Sandbox{Pod: testbed.Pod{Namespace: e.namespace, Name: "pod-1", UID: string(pod.UID)},
		ContainerID: sb.ContainerID, NetNS: sb.NetNS, IfName: "pod1234"}, e.bed.CNIPluginDir(), testbed.BinDir(t, "recorder"))
	resp, err := client.Do(e.ctx, socketapi.PathDelegate, &socketapi.Request{Env: env, Config: []byte(hot),
		InterfaceAttributes: &socketapi.InterfaceAttributes{IPRequest: []string{"10.9.8.7/24"}, MacRequest: "c2:00:00:00:00:42", CNIArgs: &args}})
	if err != nil || len(resp.Result) == 0 {
		t.Fatalf("/delegate ADD: %v (%v)\n%s", resp, err, e.log())
	}
	adds := e.recordsFor("ADD")
	if len(adds) != 1 || adds[0].Env["CNI_IFNAME"] != "pod1234" || !strings.Contains(adds[0].Stdin, "10.9.8.7/24") ||
		!strings.Contains(adds[0].Stdin, "c2:00:00:00:00:42") || !strings.Contains(adds[0].Stdin, `"foo":"bar"`) {
		t.Errorf("hot-plugged delegate got %+v", adds)
	}
	if rec := readFile(e.recordFile(sb)); !strings.Contains(rec, "pod1234") {
		t.Errorf("the hot-plugged attachment is not in the sandbox's record")
	}
	e.del(conf, sb)
	if dels := e.recordsFor("DEL"); len(dels) != 1 || dels[0].Env["CNI_IFNAME"] != "pod1234" {
		t.Errorf("the sandbox's DEL did not tear down the hot-plugged attachment: %+v", dels)
	}
}

// TestThickGracefulShutdown: on SIGTERM the daemon stops accepting and lets a
// request in flight finish, then exits cleanly.
func TestThickGracefulShutdown(t *testing.T) {
	const v = "1.0.0"
	e := thickEnv(t, map[string]any{"shutdownTimeout": "20s"})
	e.nad("slow", e.recorderConf(v, "slow", map[string]any{"sleepMs": 2000}), nil)
	conf := e.multusConf(v, nil)
	_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "slow"})
	done := make(chan error, 1)
	go func() { _, err := e.rt.Add(e.ctx, conf, sb); done <- err }()
	if _, err := recording.Await(e.recordDir, "ADD", 20*time.Second); err != nil {
		t.Fatalf("the delegate's ADD never began: %v\n%s", err, e.log())
	}
	if err := syscall.Kill(e.daemon.Process.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("the ADD in flight at SIGTERM failed: %v\n%s", err, e.log())
	}
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if exited, err := e.daemon.Process.Exited(); exited {
			if err != nil {
				t.Errorf("the daemon exited with %v", err)
			}
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the daemon did not exit within 30s of SIGTERM:\n%s", e.log())
		}
	}
	if err := e.daemon.Start(); err != nil {
		t.Fatal(err)
	}
	e.del(conf, sb)
}

// TestThickMetrics scrapes the daemon's metrics after an ADD, a failed ADD and a
// DEL: requests by command and result, latencies per command and network,
// delegate failures by plugin type, requests in flight, records on disk, API
// requests, process metrics.
func TestThickMetrics(t *testing.T) {
	const v = "1.0.0"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cniDir := filepath.Join(t.TempDir(), "cni")
	e := thickEnv(t, map[string]any{"metricsPort": port, "metricsAddress": "127.0.0.1", "cniDir": cniDir})
	e.cniDir = cniDir
	e.nad("sec", e.recorderConf(v, "sec", nil), nil)
	e.nad("bad", e.recorderConf(v, "bad", map[string]any{"errors": map[string]any{"ADD": map[string]any{"code": 120, "msg": "no"}}}), nil)
	conf := e.multusConf(v, nil)
	_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
	e.add(conf, sb)
	_, sb2, _ := e.pod("pod-2", map[string]string{"k8s.v1.cni.cncf.io/networks": "bad"})
	if _, err := e.rt.Add(e.ctx, conf, sb2); err == nil {
		t.Fatal("the failing ADD succeeded")
	}
	page := scrape(t, port)
	for _, want := range []string{
		`multus_requests_total{command="ADD",endpoint="/cni",result="success"} 1`,
		`multus_requests_total{command="ADD",endpoint="/cni",result="error"} 1`,
		`multus_request_duration_seconds_count{command="ADD"} 2`,
		`multus_attachment_duration_seconds_count{command="ADD",network="` + e.namespace + `/sec"} 1`,
		`multus_delegate_failures_total{plugin="recorder"} 1`,
		`multus_requests_in_flight 0`,
		`multus_attachment_records 1`,
		`multus_kubernetes_api_requests_total{code="200",method="PATCH"}`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	e.del(conf, sb)
	e.del(conf, sb2)
	if page := scrape(t, port); !strings.Contains(page, "multus_attachment_records 0") {
		t.Errorf("records gauge after DEL: %s", grep(page, "multus_attachment_records"))
	}
}

func scrape(t *testing.T, port int) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return string(data)
}

func grep(page, prefix string) string {
	var out []string
	for _, l := range strings.Split(page, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestThickStartFailures: a bad daemon-config value stops start-up with a message
// naming the key; caches that cannot sync (a ServiceAccount without list and watch)
// stop it too, within cacheSyncTimeout, instead of a daemon that serves from
// nothing.
func TestThickStartFailures(t *testing.T) {
	e := newEnv(t)
	for name, tc := range map[string]struct {
		opts testbed.DaemonOptions
		want string
	}{
		"bad value": {testbed.DaemonOptions{Config: map[string]any{"maxInFlight": 0}, NoWait: true}, `field "maxInFlight"`},
		"no caches": {testbed.DaemonOptions{Config: map[string]any{"cacheSyncTimeout": "3s"}, Rules: []rbacv1.PolicyRule{}, NoWait: true}, "did not sync"},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := testbed.LaunchDaemon(t, e.cp, t.TempDir(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Process.Stop(5 * time.Second)
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				if exited, err := d.Process.Exited(); exited {
					if err == nil {
						t.Errorf("the daemon exited 0")
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the daemon did not stop")
				}
			}
			if log := d.Process.Tail(20); !strings.Contains(log, tc.want) {
				t.Errorf("daemon output lacks %q:\n%s", tc.want, log)
			}
		})
	}
}
