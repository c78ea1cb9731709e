package thin

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/polynet-cni/polynet/internal/adapter/store"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
	"github.com/polynet-cni/polynet/test/recording"
)

// binDir holds the recorder plugin, built once for the package's tests.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "thin-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "recorder"), "github.com/polynet-cni/polynet/test/plugins/recorder").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the recorder plugin: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is a CNI environment; getenv reads it and nothing else.
type env map[string]string

func (e env) getenv(k string) string { return e[k] }

// cniEnv is the environment of a command on sandbox id of pod team-a/web.
func cniEnv(command, id string) env {
	return env{
		"CNI_COMMAND": command, "CNI_CONTAINERID": id, "CNI_NETNS": "/var/run/netns/" + id, "CNI_IFNAME": "eth0",
		"CNI_PATH": "/nonexistent", "CNI_ARGS": "K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=web;K8S_POD_UID=uid-1",
	}
}

// setup is one test's folders.
type setup struct {
	dir, cniDir, records string
}

func newSetup(t *testing.T) setup {
	dir := t.TempDir()
	return setup{dir: dir, cniDir: filepath.Join(dir, "cni"), records: filepath.Join(dir, "records")}
}

// delegate is the recorder's configuration, recording into s.records.
func (s setup) delegate() string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"cluster","type":"recorder","recordDir":%q}`, s.records)
}

// conf is a plugin configuration with the recorder as the cluster network;
// extra are more top-level keys, as JSON text with a leading comma.
func (s setup) conf(extra string) []byte {
	return fmt.Appendf(nil, `{"cniVersion":"1.0.0","name":"multus-cni-network","type":"multus","binDir":%q,"cniDir":%q,
		"logToStderr":false,"delegates":[%s]%s}`, binDir, s.cniDir, s.delegate(), extra)
}

// saveRecord stores the attachment record an ADD of sandbox id would have
// left: the recorder as the cluster network.
func (s setup) saveRecord(t *testing.T, id string) {
	t.Helper()
	err := store.New(s.cniDir).Save(&podnet.Record{
		ContainerID: id, IfName: "eth0", NetNS: "/var/run/netns/" + id, CNIVersion: "1.0.0",
		Pod:         podnet.PodRef{Namespace: "team-a", Name: "web", UID: "uid-1"},
		Attachments: []podnet.Attachment{{Network: "cluster", IfName: "eth0", Config: []byte(s.delegate()), Default: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// invocations are the recorder's invocations, as "COMMAND containerID".
func (s setup) invocations(t *testing.T) []string {
	t.Helper()
	recs, err := recording.Read(s.records)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Command+" "+r.Env["CNI_CONTAINERID"])
	}
	return out
}

// TestDelegatesOnly: with no kubeconfig and not in a cluster, ADD and DEL run
// the delegates without any API server.
func TestDelegatesOnly(t *testing.T) {
	s := newSetup(t)
	var h Handler
	out, err := h.Handle(context.Background(), "ADD", s.conf(""), cniEnv("ADD", "sb1").getenv)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	var res struct {
		Interfaces []struct{ Name string } `json:"interfaces"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Interfaces) != 1 || res.Interfaces[0].Name != "eth0" {
		t.Errorf("ADD result %s (%v), want the recorder's eth0", out, err)
	}
	if _, err := h.Handle(context.Background(), "DEL", s.conf(""), cniEnv("DEL", "sb1").getenv); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if diff := cmp.Diff([]string{"ADD sb1", "DEL sb1"}, s.invocations(t)); diff != "" {
		t.Errorf("delegate invocations (-want +got):\n%s", diff)
	}
}

// TestNewLazyKube: the API server is used when the configuration names a
// kubeconfig or the plugin runs in a cluster (both service variables set);
// otherwise there is none, as an untyped nil for the engine.
func TestNewLazyKube(t *testing.T) {
	tests := []struct {
		name       string
		kubeconfig string
		env        env
		want       bool
	}{
		{"nothing", "", env{}, false},
		{"kubeconfig", "/etc/kubeconfig", env{}, true},
		{"in cluster", "", env{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, true},
		{"host without port", "", env{"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, false},
		{"port without host", "", env{"KUBERNETES_SERVICE_PORT": "443"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newLazyKube(&config.PluginConf{Kubeconfig: tt.kubeconfig}, tt.env.getenv)
			if (k != nil) != tt.want {
				t.Errorf("newLazyKube = %v, want a client %v", k, tt.want)
			}
		})
	}
}

// countingAPI plays the API server for the pod team-a/web and counts requests.
type countingAPI struct {
	srv      *httptest.Server
	mu       sync.Mutex
	reqs     []string
	nad      string // the config of NAD kube-system/cluster-net
	notReady bool   // /readyz answers 500
}

func newCountingAPI(t *testing.T) *countingAPI {
	t.Helper()
	a := &countingAPI{}
	a.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		a.mu.Lock()
		a.reqs = append(a.reqs, r.Method+" "+r.URL.Path)
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		a.mu.Lock()
		nad, notReady := a.nad, a.notReady
		a.mu.Unlock()
		switch {
		case r.URL.Path == "/readyz" && notReady:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"kind":"Status","message":"etcd is down"}`)
		case r.URL.Path == "/readyz":
			_, _ = io.WriteString(w, "ok")
		case r.URL.Path == "/apis/k8s.cni.cncf.io/v1/namespaces/kube-system/network-attachment-definitions/cluster-net" && nad != "":
			body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"namespace": "kube-system", "name": "cluster-net"},
				"spec": map[string]any{"config": nad}})
			_, _ = w.Write(body)
		case r.Method == http.MethodPost:
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{}`)
		case strings.HasPrefix(r.URL.Path, "/api/v1/namespaces/team-a/pods/web"):
			_, _ = io.WriteString(w, `{"metadata":{"namespace":"team-a","name":"web","uid":"uid-1"}}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"kind":"Status","code":404}`)
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *countingAPI) requests() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.reqs...)
}

// kubeconfig writes a kubeconfig for the fake into dir: its TLS certificate's
// CA, and a token.
func (a *countingAPI) kubeconfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "kubeconfig")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw})
	kc := fmt.Sprintf(`current-context: x
contexts: [{name: x, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: %q, certificate-authority-data: %s}}]
users: [{name: u, user: {token: t}}]
`, a.srv.URL, base64.StdEncoding.EncodeToString(ca))
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDelWithRecordNeedsNoAPI: a DEL that finds its attachment record tears
// the sandbox down without reading the credentials or asking the API server,
// whether the kubeconfig is missing, unreadable, or valid (then no request
// reaches the server), or the plugin runs in a cluster whose ServiceAccount
// files are not there.
func TestDelWithRecordNeedsNoAPI(t *testing.T) {
	api := newCountingAPI(t)
	tests := []struct {
		name       string
		kubeconfig func(dir string) string
		env        env
	}{
		{"kubeconfig missing", func(dir string) string { return filepath.Join(dir, "no-such-kubeconfig") }, nil},
		{"kubeconfig unreadable", func(dir string) string { return dir }, nil}, // a folder cannot be read as a file
		{"kubeconfig valid", func(dir string) string { return api.kubeconfig(t, dir) }, nil},
		{"in cluster", func(string) string { return "" }, env{"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			s.saveRecord(t, "sb2")
			e := cniEnv("DEL", "sb2")
			for k, v := range tt.env {
				e[k] = v
			}
			before := len(api.requests())
			extra := ""
			if kc := tt.kubeconfig(s.dir); kc != "" {
				extra = fmt.Sprintf(`,"kubeconfig":%q`, kc)
			}
			if _, err := (Handler{}).Handle(context.Background(), "DEL", s.conf(extra), e.getenv); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			if diff := cmp.Diff([]string{"DEL sb2"}, s.invocations(t)); diff != "" {
				t.Errorf("delegate invocations (-want +got):\n%s", diff)
			}
			if _, err := store.New(s.cniDir).Load("sb2"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("record after DEL: %v, want it gone", err)
			}
			if reqs := api.requests()[before:]; len(reqs) != 0 {
				t.Errorf("requests to the API server: %v, want none", reqs)
			}
		})
	}
}

// TestAddConnectsWhenNeeded: an ADD of a pod reads its credentials and asks the
// API server: with a good kubeconfig it reads the pod and writes its
// network-status; with a missing one it fails, naming the file.
func TestAddConnectsWhenNeeded(t *testing.T) {
	api := newCountingAPI(t)
	s := newSetup(t)
	conf := s.conf(fmt.Sprintf(`,"kubeconfig":%q`, api.kubeconfig(t, s.dir)))
	if _, err := (Handler{}).Handle(context.Background(), "ADD", conf, cniEnv("ADD", "sb3").getenv); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	// The event is sent in the background; it is in when Handle returns.
	want := []string{"GET /api/v1/namespaces/team-a/pods/web", "PATCH /api/v1/namespaces/team-a/pods/web/status", "POST /api/v1/namespaces/team-a/events"}
	if diff := cmp.Diff(want, api.requests(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("API requests (-want +got):\n%s", diff)
	}

	missing := filepath.Join(s.dir, "no-such-kubeconfig")
	_, err := (Handler{}).Handle(context.Background(), "ADD", s.conf(fmt.Sprintf(`,"kubeconfig":%q`, missing)), cniEnv("ADD", "sb4").getenv)
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "kubernetes credentials") {
		t.Errorf("ADD with a missing kubeconfig: %v, want an error about the credentials naming %s", err, missing)
	}
	if diff := cmp.Diff([]string{"ADD sb3"}, s.invocations(t)); diff != "" {
		t.Errorf("delegate invocations (-want +got):\n%s", diff)
	}
}

// TestStatusAsksAPI: STATUS with a kubeconfig checks the API server's
// readiness and reads the cluster network's NAD through the one lazily built
// client, then asks the delegate; an API server that is not ready makes the
// plugin "not available" (CNI code 50).
func TestStatusAsksAPI(t *testing.T) {
	api := newCountingAPI(t)
	s := newSetup(t)
	api.nad = fmt.Sprintf(`{"cniVersion":"1.1.0","name":"cluster","type":"recorder","recordDir":%q}`, s.records)
	conf := fmt.Appendf(nil, `{"cniVersion":"1.1.0","name":"multus-cni-network","type":"multus","binDir":%q,"cniDir":%q,
		"logToStderr":false,"clusterNetwork":"cluster-net","kubeconfig":%q}`, binDir, s.cniDir, api.kubeconfig(t, s.dir))
	if _, err := (Handler{}).Handle(context.Background(), "STATUS", conf, env{"CNI_COMMAND": "STATUS"}.getenv); err != nil {
		t.Fatalf("STATUS: %v", err)
	}
	want := []string{"GET /readyz", "GET /apis/k8s.cni.cncf.io/v1/namespaces/kube-system/network-attachment-definitions/cluster-net"}
	if diff := cmp.Diff(want, api.requests()); diff != "" {
		t.Errorf("API requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"STATUS "}, s.invocations(t)); diff != "" {
		t.Errorf("delegate invocations (-want +got):\n%s", diff)
	}

	api.mu.Lock()
	api.notReady = true
	api.mu.Unlock()
	_, err := (Handler{}).Handle(context.Background(), "STATUS", conf, env{"CNI_COMMAND": "STATUS"}.getenv)
	var coded interface{ CNICode() uint }
	if !errors.As(err, &coded) || coded.CNICode() != 50 || !strings.Contains(err.Error(), "etcd is down") {
		t.Errorf("STATUS against an API server that is not ready: %v, want CNI code 50 with the server's message", err)
	}
}

// TestBadInput: a bad configuration is a *config.FieldError naming the key, a
// bad environment a *request.Error naming the variable.
func TestBadInput(t *testing.T) {
	s := newSetup(t)
	tests := []struct {
		name      string
		command   string
		stdin     []byte
		env       env
		wantField string
		wantVar   string
	}{
		{"log level", "ADD", s.conf(`,"logLevel":"loud"`), cniEnv("ADD", "x"), "logLevel", ""},
		{"relative kubeconfig", "ADD", s.conf(`,"kubeconfig":"kubeconfig"`), cniEnv("ADD", "x"), "kubeconfig", ""},
		{"api timeout", "ADD", s.conf(`,"apiTimeout":"soon"`), cniEnv("ADD", "x"), "apiTimeout", ""},
		{"no networks", "ADD", []byte(`{"cniVersion":"1.0.0","name":"n","type":"multus"}`), cniEnv("ADD", "x"), "clusterNetwork", ""},
		{"not JSON", "DEL", []byte(`{"cniVersion":`), cniEnv("DEL", "x"), "", ""},
		{"no netns on ADD", "ADD", s.conf(""), env{"CNI_CONTAINERID": "x", "CNI_IFNAME": "eth0"}, "", "CNI_NETNS"},
		{"unknown command", "FOO", s.conf(""), cniEnv("ADD", "x"), "", "CNI_COMMAND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (Handler{Stderr: io.Discard}).Handle(context.Background(), tt.command, tt.stdin, tt.env.getenv)
			if err == nil {
				t.Fatal("Handle succeeded")
			}
			if tt.wantVar != "" {
				var re *request.Error
				if !errors.As(err, &re) || re.Var != tt.wantVar {
					t.Errorf("error %v, want a request error about %s", err, tt.wantVar)
				}
				return
			}
			var fe *config.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Errorf("error %v (%T), want a *config.FieldError of field %q", err, err, tt.wantField)
			}
			if tt.wantField != "" && !strings.Contains(err.Error(), tt.wantField) {
				t.Errorf("error %q does not name %s", err, tt.wantField)
			}
		})
	}
	if got := s.invocations(t); len(got) != 0 {
		t.Errorf("delegates ran for bad input: %v", got)
	}
}

// TestLogger: a log file that cannot be opened costs the log file only: the
// failure is said on stderr, logging to stderr carries on, and the command
// succeeds; a file that can be opened gets the lines.
func TestLogger(t *testing.T) {
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(notADir, "multus.log") // under a file: never openable
	goodFile := filepath.Join(dir, "logs", "multus.log")
	tests := []struct {
		name       string
		file       string
		toStderr   bool
		wantStderr []string
		wantFile   bool
	}{
		{"bad file, stderr on", badFile, true, []string{"log file " + badFile, "logging without it", "level=INFO", "detached"}, false},
		{"bad file, stderr off", badFile, false, []string{"log file " + badFile}, false},
		{"good file", goodFile, false, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			s.saveRecord(t, "sb5")
			var stderr bytes.Buffer
			conf := s.conf(fmt.Sprintf(`,"logLevel":"debug","logFile":%q,"logToStderr":%v`, tt.file, tt.toStderr))
			if _, err := (Handler{Stderr: &stderr}).Handle(context.Background(), "DEL", conf, cniEnv("DEL", "sb5").getenv); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if tt.wantStderr == nil && stderr.Len() != 0 {
				t.Errorf("stderr %q, want nothing", stderr.String())
			}
			if !tt.toStderr && strings.Contains(stderr.String(), "level=") {
				t.Errorf("log lines on stderr with logToStderr off:\n%s", stderr.String())
			}
			data, err := os.ReadFile(tt.file)
			if tt.wantFile && (err != nil || !strings.Contains(string(data), "detached")) {
				t.Errorf("log file: %v, %q; want log lines", err, data)
			}
		})
	}
}
