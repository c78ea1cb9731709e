package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/polynet-cni/polynet/internal/adapter/apiclient"
	"github.com/polynet-cni/polynet/test/testbed"
)

// saFolder is a ServiceAccount folder laid out as the kubelet's projected
// volume lays it out: token and ca.crt are symlinks through ..data, and an
// update renames a new ..data symlink over the old one.
type saFolder struct {
	t   *testing.T
	dir string
	n   int
}

func newSAFolder(t *testing.T, token string, ca []byte) *saFolder {
	s := &saFolder{t: t, dir: filepath.Join(t.TempDir(), "serviceaccount")}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s.rotate(token, ca)
	for _, f := range []string{"token", "ca.crt"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(s.dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *saFolder) rotate(token string, ca []byte) {
	s.t.Helper()
	s.n++
	ts := fmt.Sprintf("..2026_12_02_%02d", s.n)
	if err := os.Mkdir(filepath.Join(s.dir, ts), 0o755); err != nil {
		s.t.Fatal(err)
	}
	for f, c := range map[string][]byte{"token": []byte(token), "ca.crt": ca} {
		if err := os.WriteFile(filepath.Join(s.dir, ts, f), c, 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	tmp := filepath.Join(s.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		s.t.Fatal(err)
	}
}

// boundToken mints a token for the ServiceAccount bound to a Secret it
// creates: deleting the Secret revokes the token, as deleting a pod revokes
// the kubelet's token for that pod.
func boundToken(ctx context.Context, t *testing.T, kc kubernetes.Interface, ns, sa, secret string) string {
	t.Helper()
	s, err := kc.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secret}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ttl := int64(3600)
	tr, err := kc.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &ttl,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: s.Name, UID: s.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// TestThinEntrypointTokenRotation runs thin_entrypoint as the thin DaemonSet
// does, with the ClusterRole of the thin manifest and a projected token; the
// real thin plugin then sets up a pod from the configuration and kubeconfig it
// wrote. The token then rotates and the old one is revoked: the kubeconfig
// follows within seconds, and the plugin, which reads it on every call, sets
// up the next pod as before. Upstream's installer left the first token in
// place, and pods failed once it expired (Multus #852).
func TestThinEntrypointTokenRotation(t *testing.T) {
	e := newEnv(t)
	if _, err := e.cp.ServiceAccount(e.ctx, e.namespace, "multus", shippedRules(t), time.Hour); err != nil {
		t.Fatal(err)
	}
	tok1 := boundToken(e.ctx, t, e.kc, e.namespace, "multus", "token-1")
	sa := newSAFolder(t, tok1, e.cp.CAData())

	root := t.TempDir()
	binDir, confDir := filepath.Join(root, "opt/cni/bin"), filepath.Join(root, "etc/cni/net.d")
	for _, d := range []string{binDir, confDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	primary, _ := json.Marshal(e.clusterConf("1.0.0"))
	if err := os.WriteFile(filepath.Join(confDir, "10-cluster.conflist"), primary, 0o644); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(confDir, "multus.d", "multus.kubeconfig")
	u, err := url.Parse(e.cp.URL)
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "KUBERNETES_SERVICE_HOST="+u.Hostname(), "KUBERNETES_SERVICE_PORT="+u.Port())
	args := []string{"--cni-bin-dir=" + binDir, "--cni-conf-dir=" + confDir, "--multus-autoconfig-dir=" + confDir,
		"--multus-cni-conf-dir=" + filepath.Join(root, "etc/cni/multus/net.d"),
		"--multus-bin-file=" + testbed.Binary(t, "multus"), "--multus-kubeconfig-file-host=" + kubeconfig,
		"--service-account-dir=" + sa.dir, "--additional-bin-dir=" + e.bed.CNIPluginDir(),
		"--multus-log-level=debug", "--multus-log-file=" + e.logFile, "--multus-log-to-stderr=false", "--cleanup-config-on-exit"}
	proc, err := testbed.StartProcess("thin_entrypoint", testbed.Binary(t, "thin_entrypoint"), args, env, filepath.Join(root, "entrypoint.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Stop(15 * time.Second) })
	generated := filepath.Join(confDir, "00-multus.conflist")
	waitUntil(t, proc, "the generated configuration", func() bool { return readFile(generated) != "" })

	// The plugin as the runtime runs it: the generated file, with only cniDir
	// pointed at the test's folder instead of the host's /var/lib/cni/multus.
	conf := withCNIDir(t, readFile(generated), e.cniDir)
	for _, b := range []string{"multus", "passthru"} {
		if !fileExists(filepath.Join(binDir, b)) {
			t.Fatalf("%s was not installed:\n%s", b, proc.Tail(20))
		}
	}
	_, sb1, _ := e.pod("pod-1", nil)
	e.add(conf, sb1)
	if st := e.networkStatus("pod-1"); len(st) != 1 {
		t.Fatalf("network-status %+v: the plugin could not use the first token", st)
	}

	tok2 := boundToken(e.ctx, t, e.kc, e.namespace, "multus", "token-2")
	sa.rotate(tok2, e.cp.CAData())
	if err := e.kc.CoreV1().Secrets(e.namespace).Delete(e.ctx, "token-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, proc, "the first token to be revoked", func() bool { return unauthorized(e.ctx, e.cp, tok1) })
	waitUntil(t, proc, "the kubeconfig to carry the new token", func() bool {
		cfg, err := apiclient.LoadKubeconfig(kubeconfig)
		return err == nil && cfg.Token == tok2
	})
	_, sb2, _ := e.pod("pod-2", nil)
	e.add(conf, sb2)
	if st := e.networkStatus("pod-2"); len(st) != 1 {
		t.Fatalf("network-status %+v: the plugin lost its authorisation when the token rotated", st)
	}
	t.Logf("thin_entrypoint's log:\n%s", proc.Tail(20))
	e.del(conf, sb2)
	e.del(conf, sb1)

	proc.Stop(15 * time.Second)
	if fileExists(generated) || fileExists(kubeconfig) {
		t.Errorf("--cleanup-config-on-exit left the configuration or the kubeconfig:\n%s", proc.Tail(20))
	}
}

// withCNIDir sets cniDir in the plugin object of a generated .conflist.
func withCNIDir(t *testing.T, conflist, cniDir string) []byte {
	t.Helper()
	var list map[string]any
	if err := json.Unmarshal([]byte(conflist), &list); err != nil {
		t.Fatalf("generated configuration %q: %v", conflist, err)
	}
	plugins, _ := list["plugins"].([]any)
	if len(plugins) != 1 {
		t.Fatalf("generated configuration %q has no single plugin", conflist)
	}
	plugins[0].(map[string]any)["cniDir"] = cniDir
	out, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unauthorized reports whether the API server refuses token.
func unauthorized(ctx context.Context, cp *testbed.ControlPlane, token string) bool {
	cfg := &rest.Config{Host: cp.URL, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: cp.CAData()}, Timeout: 10 * time.Second}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false
	}
	_, err = kc.CoreV1().Pods("default").Get(ctx, "none", metav1.GetOptions{})
	return apierrors.IsUnauthorized(err)
}

// waitUntil polls cond for up to a minute, failing with the process's log.
func waitUntil(t *testing.T, p *testbed.Process, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(50 * time.Millisecond) {
		if exited, err := p.Exited(); exited {
			t.Fatalf("%s exited (%v) while waiting for %s:\n%s", "thin_entrypoint", err, what, p.Tail(40))
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s:\n%s", what, p.Tail(40))
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestInstallerBinaries runs the installers' binaries as their containers do:
// install_multus reports what it did in one line, leaves an identical file
// alone, and refuses what it does not understand; thin_entrypoint refuses an
// unknown flag by name.
func TestInstallerBinaries(t *testing.T) {
	src := testbed.BinDir(t, "multus", "multus-shim", "passthru", "install_multus")
	dest := t.TempDir()
	run := func(bin string, args ...string) (string, error) {
		var out bytes.Buffer
		cmd := exec.Command(testbed.Binary(t, bin), args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	out, err := run("install_multus", "-t", "thick", "-d", dest, "--source-dir", src)
	if err != nil || strings.Count(out, "\n") != 1 || !strings.Contains(out, "multus-shim installed") || !strings.Contains(out, "passthru installed") {
		t.Errorf("first install: %v\n%s", err, out)
	}
	out, err = run("install_multus", "--type", "thick", "--dest-dir", dest, "--source-dir", src)
	if err != nil || !strings.Contains(out, "multus-shim unchanged") {
		t.Errorf("second install: %v\n%s", err, out)
	}
	for _, bad := range [][]string{{"-t", "thin-ish", "-d", dest}, {"-t", "thin", "-x"}, {"-d", dest}} {
		out, err := run("install_multus", bad...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || out == "" {
			t.Errorf("install_multus %v: %v, want exit 2 and a message\n%s", bad, err, out)
		}
	}
	out, err = run("thin_entrypoint", "--multus-conf-fil=auto")
	if err == nil || !strings.Contains(out, "unknown flag: -multus-conf-fil") {
		t.Errorf("thin_entrypoint with a misspelt flag: %v\n%s", err, out)
	}
}

// TestDaemonProbe runs the thick DaemonSet's exec probes: `multus-daemon
// -probe readyz|healthz` with the daemon's configuration succeeds against a
// running daemon, and fails, naming the socket, where no daemon listens.
func TestDaemonProbe(t *testing.T) {
	d := testbed.SharedDaemon(t)
	bin := testbed.Binary(t, "multus-daemon")
	for _, probe := range []string{"readyz", "healthz"} {
		if out, err := exec.Command(bin, "-config", d.ConfigPath, "-probe", probe).CombinedOutput(); err != nil {
			t.Errorf("-probe %s against a running daemon: %v\n%s", probe, err, out)
		}
	}
	conf := filepath.Join(t.TempDir(), "daemon-config.json")
	data := fmt.Sprintf(`{"cniVersion":"1.0.0","multusAutoconfigDir":"/x","socketDir":%q}`, t.TempDir())
	if err := os.WriteFile(conf, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-config", conf, "-probe", "readyz").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "multus.sock") {
		t.Errorf("-probe with no daemon: %v, want a failure naming the socket\n%s", err, out)
	}
	if out, err := exec.Command(bin, "-config", d.ConfigPath, "-probe", "livez").CombinedOutput(); err == nil || !strings.Contains(string(out), "healthz or readyz") {
		t.Errorf("-probe livez: %v\n%s", err, out)
	}
}
