package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/polynet-cni/polynet/internal/mode/socketapi"
)

// Daemon is a multus-daemon process started by a test, against a control plane,
// with a ServiceAccount token bound to the ClusterRole of the thick DaemonSet's
// manifest (ThickManifest).
type Daemon struct {
	Process    *Process
	Dir        string
	SocketDir  string
	ConfigPath string
	// User is the daemon's identity in the API server's audit log.
	User string
	bin  string
	env  []string
}

// DaemonOptions shape a daemon: extra keys of its daemon-config.json.
type DaemonOptions struct {
	Config map[string]any
	// Account names the daemon's ServiceAccount (kube-system/<Account>).
	Account string
	// Rules replace the ClusterRole of ThickManifest when not nil.
	Rules []rbacv1.PolicyRule
	// NoWait starts the process without waiting for it to become ready.
	NoWait bool
}

// StartDaemon starts a daemon for one test and stops it when the test ends.
func StartDaemon(tb testing.TB, cp *ControlPlane, opts DaemonOptions) *Daemon {
	tb.Helper()
	d, err := LaunchDaemon(tb, cp, tb.TempDir(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Process.Stop(15 * time.Second) })
	return d
}

// LaunchDaemon starts a daemon with its files in dir and waits until its /readyz
// answers 200. The daemon's config defaults to generating the shim's
// configuration (multusConfigFile "auto") from a primary in dir/autoconf. If tb
// fails, it prints the end of the daemon's log.
func LaunchDaemon(tb testing.TB, cp *ControlPlane, dir string, opts DaemonOptions) (*Daemon, error) {
	b := Require(tb)
	account := opts.Account
	if account == "" {
		account = fmt.Sprintf("multus-daemon-%d-%d", os.Getpid(), daemonSeq.Add(1))
	}
	rules := opts.Rules
	if rules == nil {
		var err error
		if rules, err = ClusterRoleRules(filepath.Join(b.Root, ThickManifest)); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	cfg, err := cp.ServiceAccount(ctx, "kube-system", account, rules, time.Hour)
	if err != nil {
		return nil, err
	}
	d := &Daemon{Dir: dir, SocketDir: filepath.Join(dir, "run"), ConfigPath: filepath.Join(dir, "daemon-config.json"),
		User: "system:serviceaccount:kube-system:" + account, bin: Binary(tb, "multus-daemon")}
	d.tailsOnFailure(tb)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := WriteKubeconfig(kubeconfig, cfg); err != nil {
		return nil, err
	}
	for _, sub := range []string{"autoconf", "net.d"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	primary := `{"cniVersion":"1.1.0","name":"primary","plugins":[{"type":"loopback"}]}`
	if err := os.WriteFile(filepath.Join(dir, "autoconf", "10-primary.conflist"), []byte(primary), 0o644); err != nil {
		return nil, err
	}
	conf := map[string]any{
		// The daemon and the shim see the socket at the same path here; a
		// daemon in a container names the host's path as daemonSocketDir.
		"cniVersion": "1.1.0", "socketDir": d.SocketDir, "daemonSocketDir": d.SocketDir, "kubeconfig": kubeconfig,
		"multusConfigFile": "auto", "multusAutoconfigDir": filepath.Join(dir, "autoconf"), "cniConfigDir": filepath.Join(dir, "net.d"),
		// debug: the caches log what they receive, which AwaitCached waits for.
		"logLevel": "debug", "logToStderr": true,
	}
	for k, v := range opts.Config {
		conf[k] = v
	}
	data, _ := json.Marshal(conf)
	if err := os.WriteFile(d.ConfigPath, data, 0o644); err != nil {
		return nil, err
	}
	d.env = append(os.Environ(), "MULTUS_NODE_NAME="+NodeName)
	if opts.NoWait {
		d.Process, err = StartProcess("multus-daemon", d.bin, []string{"-config", d.ConfigPath}, d.env, filepath.Join(d.Dir, "daemon.log"))
		return d, err
	}
	return d, d.Start()
}

var daemonSeq atomic.Int64

var (
	sharedDaemonMu sync.Mutex
	sharedDaemon   *Daemon
)

// SharedDaemon returns the daemon that all tests of this test binary share,
// against the shared control plane, starting it on first use; Main stops it after
// the last test.
func SharedDaemon(tb testing.TB) *Daemon {
	tb.Helper()
	cp := SharedControlPlane(tb)
	sharedDaemonMu.Lock()
	defer sharedDaemonMu.Unlock()
	if sharedDaemon == nil {
		dir, err := makeTempDir("daemon")
		if err != nil {
			tb.Fatal(err)
		}
		d, err := LaunchDaemon(tb, cp, dir, DaemonOptions{})
		if err != nil {
			os.RemoveAll(dir)
			tb.Fatal(err)
		}
		sharedDaemon = d
	}
	sharedDaemon.tailsOnFailure(tb)
	return sharedDaemon
}

// tailsOnFailure makes tb print the end of the daemon's log if it fails: that of
// the process running then, after any restart.
func (d *Daemon) tailsOnFailure(tb testing.TB) {
	TailsOnFailure(tb, "daemon "+d.Dir, func() []*Process { return []*Process{d.Process} })
}

func stopSharedDaemon() {
	sharedDaemonMu.Lock()
	defer sharedDaemonMu.Unlock()
	if sharedDaemon != nil {
		sharedDaemon.Process.Stop(15 * time.Second)
		os.RemoveAll(sharedDaemon.Dir)
		sharedDaemon = nil
	}
}

// Start starts the daemon process and waits until it is ready.
func (d *Daemon) Start() error {
	p, err := StartProcess("multus-daemon", d.bin, []string{"-config", d.ConfigPath}, d.env, filepath.Join(d.Dir, "daemon.log"))
	if err != nil {
		return err
	}
	d.Process = p
	client := socketapi.Client{Socket: socketapi.SocketPath(d.SocketDir), ConnectTimeout: healthProbeTimeout, RequestTimeout: healthProbeTimeout}
	return p.waitFor(StartTimeout, func() error {
		code, err := client.Get(context.Background(), socketapi.PathReadyz)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/readyz: %d", code)
		}
		return nil
	})
}

// AwaitCached waits until the daemon's cache holds an object, and fails tb,
// with the daemon's log, when it never does: the daemon logs each arrival at
// debug level once its store has it (apicache's LogArrivals), which is how a
// test knows an ADD will be served from the cache rather than by a read.
// kind is "pod" or "NetworkAttachmentDefinition"; uid, when not empty, must
// match too (a pod recreated under its name is another pod).
func (d *Daemon) AwaitCached(tb testing.TB, kind, namespace, name, uid string) {
	tb.Helper()
	want := []string{`msg="cache added"`, "kind=" + kind + " ", "object=" + namespace + "/" + name + " "}
	if uid != "" {
		want = append(want, "uid="+uid)
	}
	err := d.Process.waitFor(StartTimeout, func() error {
		data, _ := os.ReadFile(d.Process.Log)
		for _, line := range strings.Split(string(data), "\n") {
			if containsAll(line, want) {
				return nil
			}
		}
		return fmt.Errorf("the daemon's cache has no %s %s/%s", kind, namespace, name)
	})
	if err != nil {
		tb.Fatalf("%v\n%s", err, d.Process.Tail(40))
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// Restart stops the daemon (gracefully) and starts it again.
func (d *Daemon) Restart() error {
	d.Process.Stop(15 * time.Second)
	return d.Start()
}

// The DaemonSet manifests operators apply; the tests run the plugin and the
// daemon with the very ClusterRoles these files hold.
const (
	ThinManifest  = "deployments/multus-daemonset.yml"
	ThickManifest = "deployments/multus-daemonset-thick.yml"
)

// ClusterRoleRules reads the rules of the ClusterRole in a manifest of ours, so
// tests prove the roles operators install.
func ClusterRoleRules(path string) ([]rbacv1.PolicyRule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var role rbacv1.ClusterRole
		if err := yaml.Unmarshal([]byte(doc), &role); err == nil && role.Kind == "ClusterRole" {
			return role.Rules, nil
		}
	}
	return nil, fmt.Errorf("no ClusterRole in %s", path)
}
