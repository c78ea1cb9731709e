package nodeengine

import (
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/adapter/confdir"
	"github.com/polynet-cni/polynet/internal/adapter/delegate"
	"github.com/polynet-cni/polynet/internal/adapter/hostfiles"
	"github.com/polynet-cni/polynet/internal/adapter/netnsroute"
	"github.com/polynet-cni/polynet/internal/adapter/podresources"
	"github.com/polynet-cni/polynet/internal/adapter/store"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/engine"
	"github.com/polynet-cni/polynet/internal/engine/attach"
	"github.com/polynet-cni/polynet/internal/request"
)

// fakeKube is a Kubernetes adapter that is never called.
type fakeKube struct{ engine.Kubernetes }

// wrapped is what an Instrument function returns.
type wrapped struct {
	engine.Delegates
	runner *delegate.Runner
}

func parse(t *testing.T, doc string) *config.PluginConf {
	t.Helper()
	c, err := config.ParsePlugin([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNew: the engine has every adapter, built from the request's
// configuration; delegates are looked up in binDir's folders, then CNI_PATH's,
// with the given exec and cached in cniDir.
func TestNew(t *testing.T) {
	conf := parse(t, `{"cniVersion":"1.0.0","name":"n","type":"multus","clusterNetwork":"c",
		"binDir":"/opt/a::/opt/b","cniDir":"/var/lib/test-cni","apiTimeout":"7s",
		"podResourcesSocket":"/run/pr.sock","kubeletCheckpoint":"/var/lib/ckpt"}`)
	req := &request.Request{Command: request.Add, Path: []string{"/usr/libexec/cni", "/opt/b"}}
	exec := &invoke.DefaultExec{}
	log := slog.New(slog.DiscardHandler)
	kube := &fakeKube{}

	e := New(conf, req, Options{Kube: kube, Exec: exec, Log: log})
	requireAdapters(t, e)
	if e.Kube != engine.Kubernetes(kube) {
		t.Errorf("Kube %v, want the given adapter", e.Kube)
	}
	runner, ok := e.Delegates.(*delegate.Runner)
	if !ok {
		t.Fatalf("Delegates is %T, want *delegate.Runner", e.Delegates)
	}
	if diff := cmp.Diff(&delegate.Runner{Path: []string{"/opt/a", "/opt/b", "/usr/libexec/cni", "/opt/b"}, CacheDir: "/var/lib/test-cni", Exec: exec}, runner); diff != "" {
		t.Errorf("delegate runner (-want +got):\n%s", diff)
	}
	devs, ok := e.Devices.(attach.Devices)
	if !ok {
		t.Fatalf("Devices is %T, want attach.Devices", e.Devices)
	}
	if diff := cmp.Diff(podresources.Source{Socket: "/run/pr.sock", Checkpoint: "/var/lib/ckpt", Timeout: 7 * time.Second}, devs.Kubelet); diff != "" {
		t.Errorf("kubelet's devices (-want +got):\n%s", diff)
	}
	if devs.Claims != nil || devs.Log == nil {
		t.Errorf("devices' claims %v (want none: no Claims option), log %v (want the request's)", devs.Claims, devs.Log)
	}
	if diff := cmp.Diff(store.New("/var/lib/test-cni"), e.Records); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if e.Routes != (netnsroute.Editor{}) || e.Files != (hostfiles.Files{}) || e.Confs != (confdir.Source{}) {
		t.Errorf("routes %v, files %v, confs %v: want the host's", e.Routes, e.Files, e.Confs)
	}
	if e.Log != log || e.Now != nil {
		t.Errorf("log %p (want %p), clock set %v (want the real one)", e.Log, log, e.Now != nil)
	}
	// The request's CNI_PATH is not changed by the append.
	if diff := cmp.Diff([]string{"/usr/libexec/cni", "/opt/b"}, req.Path); diff != "" {
		t.Errorf("request path changed (-want +got):\n%s", diff)
	}
}

// TestNewInstrument: Instrument gets the runner and its result is the engine's
// Delegates.
func TestNewInstrument(t *testing.T) {
	conf := parse(t, `{"cniVersion":"1.0.0","name":"n","type":"multus","clusterNetwork":"c"}`)
	var got *delegate.Runner
	e := New(conf, &request.Request{}, Options{Instrument: func(r *delegate.Runner) engine.Delegates {
		got = r
		return wrapped{Delegates: r, runner: r}
	}})
	w, ok := e.Delegates.(wrapped)
	if !ok {
		t.Fatalf("Delegates is %T, want what Instrument returned", e.Delegates)
	}
	if got == nil || w.runner != got || got.CacheDir != config.DefaultCNIDir {
		t.Errorf("Instrument got %+v, want the runner in %s", got, config.DefaultCNIDir)
	}
	if diff := cmp.Diff([]string{config.DefaultBinDir}, got.Path); diff != "" {
		t.Errorf("runner path (-want +got):\n%s", diff)
	}
}

// fakeClaims is a ClaimSource that is never called.
type fakeClaims struct{ attach.ClaimSource }

// TestNewClaims: the Claims option joins kubelet's devices in the engine's
// device source.
func TestNewClaims(t *testing.T) {
	conf := parse(t, `{"cniVersion":"1.0.0","name":"n","type":"multus","clusterNetwork":"c"}`)
	claims := &fakeClaims{}
	e := New(conf, &request.Request{}, Options{Claims: claims})
	devs, ok := e.Devices.(attach.Devices)
	if !ok || devs.Claims != attach.ClaimSource(claims) || devs.Kubelet == nil {
		t.Errorf("Devices %#v, want kubelet's and the given claims", e.Devices)
	}
}

// TestNewWithoutKube: no Kubernetes adapter leaves the engine's an untyped
// nil, which the engine's nil checks take for delegates-only mode; the other
// adapters are there all the same.
func TestNewWithoutKube(t *testing.T) {
	conf := parse(t, `{"cniVersion":"1.0.0","name":"n","type":"multus","delegates":[{"cniVersion":"1.0.0","name":"c","type":"x"}]}`)
	e := New(conf, &request.Request{}, Options{})
	if e.Kube != nil {
		t.Fatalf("Kube is %#v, want nil", e.Kube)
	}
	requireAdapters(t, e)
}

// requireAdapters fails for every adapter of the engine that is not set, Kube
// aside: an adapter added to the engine and forgotten here shows too.
func requireAdapters(t *testing.T, e *engine.Engine) {
	t.Helper()
	v := reflect.ValueOf(e).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Type.Kind() == reflect.Interface && f.Name != "Kube" && v.Field(i).IsNil() {
			t.Errorf("engine adapter %s is not set", f.Name)
		}
	}
}
