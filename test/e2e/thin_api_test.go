package e2e

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/polynet-cni/polynet/internal/adapter/apiclient"
	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/test/testbed"
)

// readPodsRules lets a ServiceAccount read pods and nothing else.
var readPodsRules = []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}

// serviceEnv is the environment a pod gets for the control plane's API server.
func serviceEnv(t *testing.T, cp *testbed.ControlPlane) func(string) string {
	t.Helper()
	u, err := url.Parse(cp.URL)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KUBERNETES_SERVICE_HOST": u.Hostname(), "KUBERNETES_SERVICE_PORT": u.Port()}
	return func(k string) string { return env[k] }
}

// readPod reads namespace/name with cfg's client, failing the test on error.
func readPod(t *testing.T, ctx context.Context, cfg *apiclient.Config, namespace, name string) *podnet.Pod {
	t.Helper()
	c, err := apiclient.New(cfg, 10*time.Second, 5*time.Second)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	pod, err := c.Pod(ctx, namespace, name)
	if err != nil {
		t.Fatalf("reading pod %s/%s: %v", namespace, name, err)
	}
	return pod
}

// TestThinClientInCluster: the thin plugin's client in a pod's place, against
// the real API server: the service's address from KUBERNETES_SERVICE_HOST and
// _PORT, and a ServiceAccount folder laid out as the kubelet projects it, with
// a token minted through the TokenRequest API. The pod is read with that
// identity; after the token rotates on disk the next client uses the new one;
// a token the server does not know is refused as 401 with code 107, not
// retried as if transient.
func TestThinClientInCluster(t *testing.T) {
	e := newEnv(t)
	pod, _, _ := e.pod("pod-1", nil)
	if _, err := e.cp.ServiceAccount(e.ctx, e.namespace, "thin", readPodsRules, time.Hour); err != nil {
		t.Fatal(err)
	}
	token := func() string {
		tok, err := e.cp.Token(e.ctx, e.namespace, "thin", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	sa := newSAFolder(t, token(), e.cp.CAData())
	inCluster := apiclient.InCluster{Getenv: serviceEnv(t, e.cp), ServiceAccountDir: sa.dir}
	cfg, err := inCluster.Config()
	if err != nil {
		t.Fatal(err)
	}
	if got := readPod(t, e.ctx, cfg, e.namespace, "pod-1"); got.UID != string(pod.UID) {
		t.Errorf("pod UID %s, want %s", got.UID, pod.UID)
	}

	sa.rotate(token(), e.cp.CAData())
	if got := readPod(t, e.ctx, cfg, e.namespace, "pod-1"); got.UID != string(pod.UID) {
		t.Errorf("after rotation: pod UID %s, want %s", got.UID, pod.UID)
	}

	sa.rotate("not-a-token", e.cp.CAData())
	c, err := apiclient.New(cfg, 10*time.Second, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Pod(e.ctx, e.namespace, "pod-1")
	var apiErr *podnet.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 401 || apiErr.CNICode() != cnicode.KubernetesAPI {
		t.Errorf("unknown token: %v, want 401 with code %d", err, cnicode.KubernetesAPI)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("a 401 took %s: it was retried", took)
	}
}

// TestThinClientKubeconfigFiles: a kubeconfig that names its CA, token and
// client certificate files by paths relative to its own folder, against the
// real API server. The plugin's client resolves them there, as clientcmd does,
// authenticates with each, and reads the token file at each invocation.
func TestThinClientKubeconfigFiles(t *testing.T) {
	e := newEnv(t)
	pod, _, _ := e.pod("pod-1", nil)
	saCfg, err := e.cp.ServiceAccount(e.ctx, e.namespace, "thin", readPodsRules, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := e.cp.UserConfig("thin-admin", "system:masters")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"pki/ca.crt": e.cp.CAData(), "secrets/token": []byte(saCfg.BearerToken + "\n"),
		"pki/client.crt": admin.CertData, "pki/client.key": admin.KeyData,
	} {
		writeTestFile(t, filepath.Join(dir, name), content)
	}
	path := filepath.Join(dir, "conf", "kubeconfig")
	writeKubeconfigFor := func(user string) {
		writeTestFile(t, path, []byte(`apiVersion: v1
kind: Config
current-context: test
contexts: [{name: test, context: {cluster: test, user: test}}]
clusters:
- name: test
  cluster:
    server: `+e.cp.URL+`
    certificate-authority: ../pki/ca.crt
users:
- name: test
  user:
    `+user+"\n"))
	}
	tests := []struct{ name, user string }{
		{"client certificate", "client-certificate: ../pki/client.crt\n    client-key: ../pki/client.key"},
		{"token file", "tokenFile: ../secrets/token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeKubeconfigFor(tt.user)
			cfg, err := apiclient.LoadKubeconfig(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := readPod(t, e.ctx, cfg, e.namespace, "pod-1"); got.UID != string(pod.UID) {
				t.Errorf("pod UID %s, want %s", got.UID, pod.UID)
			}
		})
	}

	// The token file is read when the client is built: a revoked token on disk
	// fails; the next one minted works without touching the kubeconfig.
	writeKubeconfigFor("tokenFile: ../secrets/token")
	cfg, err := apiclient.LoadKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "secrets/token"), []byte("revoked"))
	c, err := apiclient.New(cfg, 10*time.Second, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pod(e.ctx, e.namespace, "pod-1"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("with a token the server does not know: %v, want 401", err)
	}
	fresh, err := e.cp.Token(e.ctx, e.namespace, "thin", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "secrets/token"), []byte(fresh))
	readPod(t, e.ctx, cfg, e.namespace, "pod-1")
}

// TestThinRelativeKubeconfigAdd: the thin plugin, run by the runtime, with a
// kubeconfig whose CA and token files are relative to its folder: the pod is
// set up and its network-status written with that identity.
func TestThinRelativeKubeconfigAdd(t *testing.T) {
	const v = "1.0.0"
	e := newEnv(t)
	cfg, err := e.cp.ServiceAccount(e.ctx, e.namespace, "multus", shippedRules(t), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(e.kubeconfig)
	writeTestFile(t, filepath.Join(dir, "multus.d", "ca.crt"), e.cp.CAData())
	writeTestFile(t, filepath.Join(dir, "multus.d", "token"), []byte(cfg.BearerToken))
	writeTestFile(t, e.kubeconfig, []byte(`current-context: multus-context
contexts: [{name: multus-context, context: {cluster: local, user: multus}}]
clusters: [{name: local, cluster: {server: "`+e.cp.URL+`", certificate-authority: multus.d/ca.crt}}]
users: [{name: multus, user: {tokenFile: multus.d/token}}]
`))
	e.nad("sec", e.recorderConf(v, "sec", nil), nil)
	_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
	conf := e.multusConf(v, nil)
	e.add(conf, sb)
	if st := e.networkStatus("pod-1"); len(st) != 2 {
		t.Errorf("network-status %+v, want 2 entries", st)
	}
	e.del(conf, sb)
}

// TestThinCredentialErrors: an ADD whose credentials cannot be used fails with
// the CNI code the decision in apiclient.CredentialError gives (11 for a file
// not written yet, 7 for one that is wrong and for a pod's ServiceAccount files
// missing), never 999; the message names the file and never the token; nothing
// is attached, recorded or left behind, and the runtime's DEL that follows
// succeeds.
func TestThinCredentialErrors(t *testing.T) {
	const v = "1.0.0"
	const secret = "e2e-secret-token-value"
	const kubeletSA = "/var/run/secrets/kubernetes.io/serviceaccount"
	kubeconfig := func(cluster, user string) string {
		return `current-context: c
contexts: [{name: c, context: {cluster: ` + cluster + `, user: ` + user + `}}]
clusters: [{name: local, cluster: {server: "https://127.0.0.1:1", certificate-authority: ca.crt}}]
users: [{name: multus, user: {token: ` + secret + `}}, {name: from-file, user: {tokenFile: token}}]
`
	}
	tests := []struct {
		name string
		// files are written beside the kubeconfig; "kubeconfig" absent means none,
		// and a content of "/" makes a folder.
		files    map[string]string
		inPod    bool // no kubeconfig, the service variables set
		wantCode uint
		wantFile string // relative to the kubeconfig's folder, unless absolute
		want     string
	}{
		{name: "kubeconfig missing", wantCode: cnicode.TryAgainLater, wantFile: "kubeconfig"},
		{name: "kubeconfig empty", files: map[string]string{"kubeconfig": ""}, wantCode: cnicode.TryAgainLater, wantFile: "kubeconfig"},
		{name: "kubeconfig is a folder", files: map[string]string{"kubeconfig": "/"}, wantCode: cnicode.InvalidNetworkConfig, wantFile: "kubeconfig"},
		{name: "kubeconfig not YAML", files: map[string]string{"kubeconfig": "users: [{name: multus, user: {token: " + secret + "}}]\nclusters: [oops"},
			wantCode: cnicode.InvalidNetworkConfig, wantFile: "kubeconfig"},
		{name: "user missing", files: map[string]string{"kubeconfig": kubeconfig("local", "nobody"), "ca.crt": "x"},
			wantCode: cnicode.InvalidNetworkConfig, wantFile: "kubeconfig", want: `user "nobody"`},
		{name: "cluster missing", files: map[string]string{"kubeconfig": kubeconfig("elsewhere", "multus")},
			wantCode: cnicode.InvalidNetworkConfig, wantFile: "kubeconfig", want: `cluster "elsewhere"`},
		{name: "CA file missing", files: map[string]string{"kubeconfig": kubeconfig("local", "multus")},
			wantCode: cnicode.TryAgainLater, wantFile: "ca.crt"},
		{name: "CA file not PEM", files: map[string]string{"kubeconfig": kubeconfig("local", "multus"), "ca.crt": "garbage"},
			wantCode: cnicode.InvalidNetworkConfig, wantFile: "ca.crt"},
		{name: "token file missing", files: map[string]string{"kubeconfig": kubeconfig("local", "from-file"), "ca.crt": "PEM"},
			wantCode: cnicode.TryAgainLater, wantFile: "token"},
		{name: "token file empty", files: map[string]string{"kubeconfig": kubeconfig("local", "from-file"), "ca.crt": "PEM", "token": "\n"},
			wantCode: cnicode.TryAgainLater, wantFile: "token"},
		{name: "in a pod without its ServiceAccount files", inPod: true,
			wantCode: cnicode.InvalidNetworkConfig, wantFile: kubeletSA + "/ca.crt", want: "automountServiceAccountToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			dir := t.TempDir()
			for name, content := range tt.files {
				if content == "PEM" {
					content = string(e.cp.CAData())
				}
				path := filepath.Join(dir, name)
				if content == "/" {
					if err := os.Mkdir(path, 0o755); err != nil {
						t.Fatal(err)
					}
					continue
				}
				writeTestFile(t, path, []byte(content))
			}
			extra := map[string]any{"kubeconfig": filepath.Join(dir, "kubeconfig")}
			if tt.inPod {
				if _, err := os.Stat(kubeletSA); err == nil {
					t.Skipf("%s exists on this machine: the case needs it absent", kubeletSA)
				}
				extra["kubeconfig"] = nil
				// libcni passes the runtime's environment on to the plugin.
				t.Setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
				t.Setenv("KUBERNETES_SERVICE_PORT", "1")
			}
			e.nad("sec", e.recorderConf(v, "sec", nil), nil)
			_, sb, netns := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
			conf := e.multusConf(v, extra)
			_, err := e.rt.Add(e.ctx, conf, sb)
			ce := cniError(t, err)
			if ce.Code != tt.wantCode {
				t.Errorf("code %d, want %d: %s", ce.Code, tt.wantCode, ce.Msg)
			}
			file := tt.wantFile
			if !filepath.IsAbs(file) {
				file = filepath.Join(dir, file)
			}
			for _, part := range []string{file, tt.want} {
				if !strings.Contains(ce.Msg, part) {
					t.Errorf("message %q does not mention %q", ce.Msg, part)
				}
			}
			if strings.Contains(ce.Msg+ce.Details+readFile(e.logFile), secret) {
				t.Errorf("the token is in the error or the log: %s\nlog:\n%s", ce.Msg, e.log())
			}
			if got := e.recordsFor("ADD"); len(got) != 0 {
				t.Errorf("%d delegate ADDs, want none", len(got))
			}
			if got := links(t, netns); len(got) != 1 {
				t.Errorf("pod links %v, want only lo", got)
			}
			if fileExists(e.recordFile(sb)) {
				t.Error("an attachment record was left")
			}
			e.del(conf, sb)
		})
	}
}

func writeTestFile(t *testing.T, path string, content []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
}
