package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/version"
	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/adapter/store"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/mode/socketapi"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
	"github.com/polynet-cni/polynet/internal/selection"
)

// parseDaemon parses a daemon configuration or fails the test.
func parseDaemon(t *testing.T, doc string) *config.DaemonConf {
	t.Helper()
	c, err := config.ParseDaemon([]byte(doc))
	if err != nil {
		t.Fatalf("daemon config: %v", err)
	}
	return c
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestPrepare: the typed request comes from the request's own environment, never
// the daemon's, and the plugin configuration is the shim's with the daemon's
// plugin keys laid over; the daemon's own keys and the request's identity stay
// out of it.
func TestPrepare(t *testing.T) {
	// The daemon's own environment names another sandbox: it must not be read.
	t.Setenv("CNI_CONTAINERID", "daemon-env")
	t.Setenv("CNI_IFNAME", "daemon0")
	t.Setenv("CNI_ARGS", "K8S_POD_NAMESPACE=wrong;K8S_POD_NAME=wrong")

	d := &dispatcher{conf: parseDaemon(t, `{
		"cniVersion": "1.1.0", "name": "daemon-name", "type": "daemon-type",
		"multusConfigFile": "/etc/cni/net.d/00-multus.conf", "socketDir": "/run/multus-test",
		"kubeconfig": "/etc/daemon/kubeconfig", "cniDir": "/var/lib/daemon-cni", "confDir": "/etc/daemon-conf",
		"namespaceIsolation": true, "globalNamespaces": "shared,common", "logLevel": "debug", "apiTimeout": "3s"}`)}
	shim := []byte(`{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus-shim",
		"clusterNetwork":"default-net","cniDir":"/var/lib/shim-cni","logLevel":"error","kubeconfig":"/etc/shim/kubeconfig"}`)
	r := &socketapi.Request{
		Env: map[string]string{
			"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "sandbox1", "CNI_NETNS": "/var/run/netns/x", "CNI_IFNAME": "eth0",
			"CNI_PATH": "/opt/cni/bin:/usr/libexec/cni", "CNI_ARGS": "IgnoreUnknown=true;K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=web;K8S_POD_UID=uid-1",
		},
		Config: shim,
	}
	req, conf, err := d.prepare(r)
	if err != nil {
		t.Fatal(err)
	}
	wantReq := &request.Request{
		Command: "ADD", ContainerID: "sandbox1", NetNS: "/var/run/netns/x", IfName: "eth0",
		Path: []string{"/opt/cni/bin", "/usr/libexec/cni"},
		Args: request.Args{{"IgnoreUnknown", "true"}, {"K8S_POD_NAMESPACE", "team-a"}, {"K8S_POD_NAME", "web"}, {"K8S_POD_UID", "uid-1"}},
		Pod:  podnet.PodRef{Namespace: "team-a", Name: "web", UID: "uid-1"}, Config: shim,
	}
	if diff := cmp.Diff(wantReq, req); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	got := []any{conf.CNIVersion, conf.Name, conf.Type, conf.ClusterNetwork, conf.Kubeconfig, conf.CNIDir, conf.ConfDir,
		conf.NamespaceIsolation, []string(conf.GlobalNamespaces), conf.LogLevel, conf.APITimeout.Duration}
	want := []any{"0.3.1", "multus-cni-network", "multus-shim", "default-net", "/etc/shim/kubeconfig", "/var/lib/daemon-cni", "/etc/daemon-conf",
		true, []string{"shared", "common"}, "debug", 3 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plugin configuration [cniVersion name type clusterNetwork kubeconfig cniDir confDir namespaceIsolation globalNamespaces logLevel apiTimeout] (-want +got):\n%s", diff)
	}
}

// TestPrepareStatusReadiness: with a generated configuration the indicator is
// kept out of the plugin configuration, yet STATUS checks the daemon's
// indicator; other commands do not get it laid in.
func TestPrepareStatusReadiness(t *testing.T) {
	d := &dispatcher{conf: parseDaemon(t, `{"cniVersion":"1.1.0","multusConfigFile":"auto","multusAutoconfigDir":"/host/etc/cni/net.d","readinessindicatorfile":"/run/ready/indicator"}`)}
	shim := []byte(`{"cniVersion":"1.1.0","name":"multus-cni-network","type":"multus-shim","clusterNetwork":"n"}`)
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CNI_COMMAND": "STATUS"}, "/run/ready/indicator"},
		{map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/x", "CNI_IFNAME": "eth0"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.env["CNI_COMMAND"], func(t *testing.T) {
			_, conf, err := d.prepare(&socketapi.Request{Env: tt.env, Config: shim})
			if err != nil {
				t.Fatal(err)
			}
			if conf.ReadinessIndicatorFile != tt.want {
				t.Errorf("readinessindicatorfile %q, want %q", conf.ReadinessIndicatorFile, tt.want)
			}
		})
	}
}

// TestPrepareErrors: a bad request environment is a *request.Error naming the
// variable, a bad configuration a *config.FieldError naming the key.
func TestPrepareErrors(t *testing.T) {
	d := &dispatcher{conf: parseDaemon(t, `{"multusConfigFile":"/etc/cni/net.d/00-multus.conf"}`)}
	good := `{"cniVersion":"1.0.0","name":"n","type":"multus-shim","clusterNetwork":"default-net"}`
	env := func(drop string, extra ...string) map[string]string {
		m := map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/n", "CNI_IFNAME": "eth0"}
		delete(m, drop)
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	tests := []struct {
		name      string
		env       map[string]string
		config    string
		wantVar   string
		wantField string
	}{
		{"no command", env("CNI_COMMAND"), good, "CNI_COMMAND", ""},
		{"unknown command", env("", "CNI_COMMAND", "VERSION"), good, "CNI_COMMAND", ""},
		{"ADD without an interface", env("CNI_IFNAME"), good, "CNI_IFNAME", ""},
		{"bad CNI_ARGS", env("", "CNI_ARGS", "novalue"), good, "CNI_ARGS", ""},
		{"config not an object", env(""), `[1,2]`, "", ""},
		{"no cluster network", env(""), `{"cniVersion":"1.0.0","name":"n","type":"multus-shim"}`, "", "clusterNetwork"},
		{"bad log level", env(""), `{"cniVersion":"1.0.0","name":"n","type":"t","clusterNetwork":"x","logLevel":"loud"}`, "", "logLevel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := d.prepare(&socketapi.Request{Env: tt.env, Config: []byte(tt.config)})
			if err == nil {
				t.Fatal("prepare succeeded")
			}
			var re *request.Error
			var fe *config.FieldError
			switch {
			case tt.wantVar != "":
				if !errors.As(err, &re) || re.Var != tt.wantVar {
					t.Errorf("error %v, want a request error about %s", err, tt.wantVar)
				}
			case !errors.As(err, &fe):
				t.Errorf("error %v (%T), want a *config.FieldError", err, err)
			case fe.Field != tt.wantField:
				t.Errorf("error %v names field %q, want %q", err, fe.Field, tt.wantField)
			}
		})
	}
}

// TestSandboxLocksExclusive: many commands on one sandbox never hold its lock
// together, and the lock table is empty once they are done.
func TestSandboxLocksExclusive(t *testing.T) {
	var s sandboxLocks
	var mu sync.Mutex
	inside, most := 0, 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			unlock := s.lock("sandbox1")
			mu.Lock()
			inside++
			most = max(most, inside)
			mu.Unlock()
			for range 10 {
				runtime.Gosched() // let the others run while the lock is held
			}
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		})
	}
	wg.Wait()
	if most != 1 {
		t.Errorf("%d commands held the sandbox's lock at once, want 1", most)
	}
	if n := len(s.locks); n != 0 {
		t.Errorf("%d locks left in the table, want 0", n)
	}
}

// TestSandboxLocksIndependent: a held lock of one sandbox does not hold up
// another, and no container ID (STATUS, GC) takes no lock.
func TestSandboxLocksIndependent(t *testing.T) {
	var s sandboxLocks
	unlockA := s.lock("a")
	defer unlockA()
	done := make(chan struct{})
	go func() {
		s.lock("b")()
		s.lock("")()
		s.lock("")()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("sandbox b (or no sandbox) waited for sandbox a's lock")
	}
}

// gateCall is one delegate invocation the gate holds until released.
type gateCall struct {
	command, containerID string
	release              chan struct{}
}

// gateExec plays the delegate binaries: every invocation is announced on entered
// and waits for its release; it records invocations of one sandbox that overlap.
type gateExec struct {
	entered chan gateCall

	mu       sync.Mutex
	active   map[string]int
	overlaps []string
	order    map[string][]string
}

func newGateExec() *gateExec {
	return &gateExec{entered: make(chan gateCall, 16), active: map[string]int{}, order: map[string][]string{}}
}

func envValue(environ []string, key string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func (g *gateExec) ExecPlugin(ctx context.Context, _ string, _ []byte, environ []string) ([]byte, error) {
	c := gateCall{command: envValue(environ, "CNI_COMMAND"), containerID: envValue(environ, "CNI_CONTAINERID"), release: make(chan struct{})}
	g.mu.Lock()
	g.active[c.containerID]++
	if g.active[c.containerID] > 1 {
		g.overlaps = append(g.overlaps, c.command+" "+c.containerID)
	}
	g.order[c.containerID] = append(g.order[c.containerID], c.command)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.active[c.containerID]--
		g.mu.Unlock()
	}()
	g.entered <- c
	select {
	case <-c.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c.command == "ADD" {
		return []byte(`{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/x"}],"ips":[]}`), nil
	}
	return nil, nil
}

func (g *gateExec) FindInPath(plugin string, _ []string) (string, error) {
	return "/fake/" + plugin, nil
}

func (g *gateExec) Decode(data []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(data)
}

// awaitCall receives the next invocation, within a generous bound.
func awaitCall(t *testing.T, g *gateExec, what string) gateCall {
	t.Helper()
	select {
	case c := <-g.entered:
		return c
	case <-time.After(time.Minute):
		t.Fatalf("no delegate invocation: %s", what)
		return gateCall{}
	}
}

// waitFor polls cond until it holds, within a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func cniRequest(command, containerID string) *socketapi.Request {
	return &socketapi.Request{
		Env: map[string]string{"CNI_COMMAND": command, "CNI_CONTAINERID": containerID, "CNI_NETNS": "/var/run/netns/" + containerID,
			"CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"},
		Config: []byte(`{"cniVersion":"1.0.0","name":"multus-cni-network","type":"multus-shim",
			"delegates":[{"cniVersion":"1.0.0","name":"cluster","type":"gate"}]}`),
	}
}

// TestDispatcherSerialisesSandbox: a DEL arriving while the ADD of its sandbox
// is in flight waits for it, while another sandbox's ADD runs meanwhile.
func TestDispatcherSerialisesSandbox(t *testing.T) {
	dir := t.TempDir()
	gate := newGateExec()
	d := &dispatcher{
		conf: parseDaemon(t, fmt.Sprintf(`{"multusConfigFile":"/etc/cni/net.d/00-multus.conf","cniDir":%q}`, filepath.Join(dir, "cni"))),
		exec: gate, log: discardLog(),
	}
	type outcome struct {
		name string
		err  error
	}
	results := make(chan outcome, 3)
	run := func(name string, r *socketapi.Request) {
		go func() {
			_, err := d.CNI(context.Background(), r)
			results <- outcome{name, err}
		}()
	}

	run("ADD a", cniRequest("ADD", "aaaa"))
	addA := awaitCall(t, gate, "ADD of sandbox aaaa")
	run("DEL a", cniRequest("DEL", "aaaa"))
	waitFor(t, "the DEL to wait for sandbox aaaa's lock", func() bool {
		d.locks.mu.Lock()
		defer d.locks.mu.Unlock()
		return d.locks.locks["aaaa"] != nil && d.locks.locks["aaaa"].users == 2
	})
	// Another sandbox is not held up by aaaa's ADD, still in flight.
	run("ADD b", cniRequest("ADD", "bbbb"))
	addB := awaitCall(t, gate, "ADD of sandbox bbbb while aaaa's ADD is in flight")
	if addB.containerID != "bbbb" {
		t.Fatalf("invocation %s %s while aaaa's ADD is in flight, want ADD bbbb", addB.command, addB.containerID)
	}
	close(addA.release)
	delA := awaitCall(t, gate, "DEL of sandbox aaaa after its ADD")
	if delA.command != "DEL" || delA.containerID != "aaaa" {
		t.Fatalf("invocation %s %s, want DEL aaaa", delA.command, delA.containerID)
	}
	close(delA.release)
	close(addB.release)
	for range 3 {
		select {
		case o := <-results:
			if o.err != nil {
				t.Errorf("%s: %v", o.name, o.err)
			}
		case <-time.After(time.Minute):
			t.Fatal("a command did not finish")
		}
	}
	gate.mu.Lock()
	defer gate.mu.Unlock()
	if len(gate.overlaps) != 0 {
		t.Errorf("overlapping invocations of one sandbox: %v", gate.overlaps)
	}
	if diff := cmp.Diff([]string{"ADD", "DEL"}, gate.order["aaaa"]); diff != "" {
		t.Errorf("invocations of sandbox aaaa (-want +got):\n%s", diff)
	}
	if n := len(d.locks.locks); n != 0 {
		t.Errorf("%d sandbox locks left, want 0", n)
	}
}

// TestDispatcherCNIResult: an ADD through the dispatcher runs the delegate with
// the request's sandbox and returns its result in the configuration's version.
func TestDispatcherCNIResult(t *testing.T) {
	gate := newGateExec()
	d := &dispatcher{
		conf: parseDaemon(t, fmt.Sprintf(`{"multusConfigFile":"/etc/cni/net.d/00-multus.conf","cniDir":%q}`, filepath.Join(t.TempDir(), "cni"))),
		exec: gate, log: discardLog(),
	}
	done := make(chan error, 1)
	var out json.RawMessage
	go func() {
		var err error
		out, err = d.CNI(context.Background(), cniRequest("ADD", "cccc"))
		done <- err
	}()
	c := awaitCall(t, gate, "ADD of cccc")
	close(c.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var res struct {
		CNIVersion string `json:"cniVersion"`
		Interfaces []struct {
			Name string `json:"name"`
		} `json:"interfaces"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("result %s: %v", out, err)
	}
	if res.CNIVersion != "1.0.0" || len(res.Interfaces) != 1 || res.Interfaces[0].Name != "eth0" {
		t.Errorf("result %s, want the delegate's, version 1.0.0", out)
	}
}

// execCall is one delegate invocation a recordingExec saw.
type execCall struct {
	Command, ContainerID, IfName string
	Stdin                        map[string]any
}

// recordingExec plays delegate binaries that succeed, and records each call.
type recordingExec struct {
	mu    sync.Mutex
	calls []execCall
}

func (r *recordingExec) ExecPlugin(_ context.Context, _ string, stdin []byte, environ []string) ([]byte, error) {
	c := execCall{Command: envValue(environ, "CNI_COMMAND"), ContainerID: envValue(environ, "CNI_CONTAINERID"), IfName: envValue(environ, "CNI_IFNAME")}
	_ = json.Unmarshal(stdin, &c.Stdin)
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	if c.Command == "ADD" {
		return []byte(`{"cniVersion":"0.4.0","interfaces":[{"name":"` + c.IfName + `"}],"ips":[]}`), nil
	}
	return nil, nil
}

func (*recordingExec) FindInPath(plugin string, _ []string) (string, error) {
	return "/fake/" + plugin, nil
}

func (*recordingExec) Decode(data []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(data)
}

// TestDispatcherDelegate: /delegate hot-plugs one network given as its own
// configuration into a sandbox's record, answers in the configuration's
// version, unplugs it again on DEL, and refuses commands it does not take.
func TestDispatcherDelegate(t *testing.T) {
	cniDir := filepath.Join(t.TempDir(), "cni")
	rx := &recordingExec{}
	d := &dispatcher{
		conf: parseDaemon(t, fmt.Sprintf(`{"multusConfigFile":"/etc/cni/net.d/00-multus.conf","cniDir":%q}`, cniDir)),
		exec: rx, log: discardLog(),
	}
	hot := []byte(`{"cniVersion":"0.4.0","name":"hot","type":"macvlan","capabilities":{"mac":true}}`)
	env := func(command string) map[string]string {
		return map[string]string{"CNI_COMMAND": command, "CNI_CONTAINERID": "dddd", "CNI_NETNS": "/var/run/netns/dddd", "CNI_IFNAME": "net5"}
	}
	out, err := d.Delegate(context.Background(), &socketapi.Request{Env: env("ADD"), Config: hot,
		InterfaceAttributes: &socketapi.InterfaceAttributes{MacRequest: "02:00:00:00:00:05"}})
	if err != nil {
		t.Fatalf("/delegate ADD: %v", err)
	}
	var res struct {
		CNIVersion string `json:"cniVersion"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.CNIVersion != "0.4.0" {
		t.Errorf("result %s (%v), want version 0.4.0, the delegate's", out, err)
	}
	rec, err := store.New(cniDir).Load("dddd")
	if err != nil || len(rec.Attachments) != 1 || rec.Attachments[0].IfName != "net5" {
		t.Fatalf("record after the hot-plug: %+v, %v; want one attachment net5", rec, err)
	}
	if _, err := d.Delegate(context.Background(), &socketapi.Request{Env: env("DEL"), Config: hot}); err != nil {
		t.Fatalf("/delegate DEL: %v", err)
	}
	rx.mu.Lock()
	calls := rx.calls
	rx.mu.Unlock()
	var got []string
	for _, c := range calls {
		got = append(got, c.Command+" "+c.ContainerID+" "+c.IfName+" "+fmt.Sprint(c.Stdin["type"]))
	}
	if diff := cmp.Diff([]string{"ADD dddd net5 macvlan", "DEL dddd net5 macvlan"}, got); diff != "" {
		t.Errorf("delegate calls (-want +got):\n%s", diff)
	}
	if len(calls) > 0 {
		if rc, _ := calls[0].Stdin["runtimeConfig"].(map[string]any); rc["mac"] != "02:00:00:00:00:05" {
			t.Errorf("ADD's runtimeConfig %v, want the requested mac", calls[0].Stdin["runtimeConfig"])
		}
	}
	if rec, err := store.New(cniDir).Load("dddd"); err == nil && len(rec.Attachments) != 0 {
		t.Errorf("record after the unplug still has %+v", rec.Attachments)
	}
	if _, err := d.Delegate(context.Background(), &socketapi.Request{Env: env("CHECK"), Config: hot}); err == nil || !strings.Contains(err.Error(), "does not take CHECK") {
		t.Errorf("/delegate CHECK: %v, want a refusal", err)
	}
	if _, err := d.Delegate(context.Background(), &socketapi.Request{Env: env("ADD"), Config: []byte(`not json`)}); err == nil {
		t.Error("/delegate ADD of a configuration that is not JSON succeeded")
	}
}

// TestSelectionOf: /delegate's interface attributes become the selection keys
// the delegate gets.
func TestSelectionOf(t *testing.T) {
	args := map[string]any{"vlan": float64(7)}
	tests := []struct {
		name string
		in   *socketapi.InterfaceAttributes
		want *selection.Element
	}{
		{"none", nil, nil},
		{"all", &socketapi.InterfaceAttributes{IPRequest: []string{"10.0.0.5/24"}, MacRequest: "02:00:00:00:00:05", CNIArgs: &args},
			&selection.Element{IPs: []string{"10.0.0.5/24"}, MAC: "02:00:00:00:00:05", CNIArgs: args}},
		{"no cni-args", &socketapi.InterfaceAttributes{MacRequest: "02:00:00:00:00:06"}, &selection.Element{MAC: "02:00:00:00:00:06"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, selectionOf(tt.in)); diff != "" {
				t.Errorf("selection (-want +got):\n%s", diff)
			}
		})
	}
}

// goneExec plays delegates for a request whose shim goes away: ADD waits for
// the request's context to end, as a delegate killed with it; each DEL records
// whether its context was live and how long it had left.
type goneExec struct {
	mu     sync.Mutex
	addRun chan struct{}
	dels   []string
}

func (g *goneExec) ExecPlugin(ctx context.Context, _ string, _ []byte, environ []string) ([]byte, error) {
	if envValue(environ, "CNI_COMMAND") == "ADD" {
		close(g.addRun)
		<-ctx.Done()
		return nil, fmt.Errorf("signal: killed: %w", ctx.Err())
	}
	state := "live"
	if ctx.Err() != nil {
		state = ctx.Err().Error()
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) > 30*time.Second {
		state += ", bounded by the request timeout"
	}
	g.mu.Lock()
	g.dels = append(g.dels, state)
	g.mu.Unlock()
	return nil, ctx.Err()
}

func (*goneExec) FindInPath(plugin string, _ []string) (string, error) {
	return "/fake/" + plugin, nil
}

func (*goneExec) Decode(data []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(data)
}

// TestDispatcherRollbackOutlivesRequest: the shim goes away mid-ADD (the
// request's context ends, as the HTTP server ends it when the connection
// closes); the rollback still DELs the attachment on a live context, bounded
// by the daemon's requestTimeout, and the record, on disk, goes with it.
func TestDispatcherRollbackOutlivesRequest(t *testing.T) {
	cniDir := filepath.Join(t.TempDir(), "cni")
	g := &goneExec{addRun: make(chan struct{})}
	d := &dispatcher{
		conf: parseDaemon(t, fmt.Sprintf(`{"multusConfigFile":"/etc/cni/net.d/00-multus.conf","cniDir":%q,"requestTimeout":"2m"}`, cniDir)),
		exec: g, log: discardLog(),
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := d.CNI(ctx, cniRequest("ADD", "dddd")); done <- err }()
	<-g.addRun
	cancel()
	err := <-done
	if err == nil || strings.Contains(err.Error(), "rolling back") {
		t.Errorf("ADD error %v, want the killed delegate's, with a clean rollback", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if diff := cmp.Diff([]string{"live, bounded by the request timeout"}, g.dels); diff != "" {
		t.Errorf("rollback DELs (-want +got):\n%s", diff)
	}
	if _, err := store.New(cniDir).Load("dddd"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("record after the rollback: %v, want none", err)
	}
}
