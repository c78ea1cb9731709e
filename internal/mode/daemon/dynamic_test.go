package daemon

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/engine"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// fakePods is a pod cache of one pod that records events.
type fakePods struct {
	mu     sync.Mutex
	pod    *podnet.Pod
	events []string
}

func (f *fakePods) CachedPod(ref podnet.PodRef) *podnet.Pod {
	if f.pod == nil || f.pod.Namespace != ref.Namespace || f.pod.Name != ref.Name {
		return nil
	}
	return f.pod
}

func (f *fakePods) Event(_ context.Context, _ podnet.PodRef, eventType, reason, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, eventType+"/"+reason)
	return nil
}

// runReconciler runs n until calls reach want and events wantEvents, or the
// test's bound passes, and returns the calls made.
func runReconciler(t *testing.T, n *dynamicNetworks, pods *fakePods, calls *counter, want, wantEvents int) int {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = n.run(ctx); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for (calls.get() < want || pods.eventCount() < wantEvents) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// Long enough for a retry the bound should have prevented to show.
	time.Sleep(100 * time.Millisecond)
	cancel()
	<-done
	return calls.get()
}

func (f *fakePods) eventCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events)
}

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) add() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

func (c *counter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestReconcileRetries: a failing change is tried again with backoff, at
// most the retries allowed, then given up with a Warning event; one that
// succeeds on a retry stops there; an invalid annotation is not retried.
func TestReconcileRetries(t *testing.T) {
	pod := &podnet.Pod{Namespace: "ns1", Name: "pod-1", UID: "uid-1"}
	tests := []struct {
		name       string
		failures   int // calls that fail before one succeeds; -1: all fail
		err        error
		wantCalls  int
		wantEvents []string
	}{
		{"gives up after the retries", -1, errors.New("no addresses left"), 4, []string{"Warning/NetworkAttachmentFailed"}},
		{"succeeds on a retry", 2, errors.New("busy"), 3, nil},
		{"invalid annotation is not retried", -1, &engine.SelectionError{Pod: pod.Ref(), Err: errors.New("bad")}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pods := &fakePods{pod: pod}
			n := newReconciler(pods, slog.New(slog.DiscardHandler), time.Millisecond, 10*time.Millisecond, 3)
			var calls counter
			n.sandbox = func(context.Context, indexed, *podnet.Pod) error {
				if c := calls.add(); tt.failures < 0 || c <= tt.failures {
					return tt.err
				}
				return nil
			}
			n.index.put("c1", pod.Ref(), "1.0.0", nil, nil)
			n.enqueue(pod.Ref())
			if got := runReconciler(t, n, pods, &calls, tt.wantCalls, len(tt.wantEvents)); got != tt.wantCalls {
				t.Errorf("%d calls, want %d", got, tt.wantCalls)
			}
			pods.mu.Lock()
			defer pods.mu.Unlock()
			if diff := cmp.Diff(tt.wantEvents, pods.events); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSandboxIndex: a pod's sandboxes are found by name and UID; a static
// pod's by name alone; removed ones are gone.
func TestSandboxIndex(t *testing.T) {
	var x sandboxIndex
	x.put("c1", podnet.PodRef{Namespace: "ns1", Name: "a", UID: "u1"}, "1.0.0", nil, nil)
	x.put("c2", podnet.PodRef{Namespace: "ns1", Name: "a", UID: "u0"}, "1.0.0", nil, nil)
	x.put("c3", podnet.PodRef{Namespace: "ns2", Name: "a", UID: "u3"}, "1.0.0", nil, nil)
	x.put("c4", podnet.PodRef{Namespace: "ns1", Name: "b"}, "1.0.0", nil, nil)
	ids := func(pod *podnet.Pod) []string {
		var out []string
		for _, sb := range x.of(pod) {
			out = append(out, sb.containerID)
		}
		slices.Sort(out)
		return out
	}
	static := &podnet.Pod{Namespace: "ns1", Name: "a", UID: "mirror", Annotations: map[string]string{podnet.ConfigSourceAnnotation: "file"}}
	for _, tc := range []struct {
		pod  *podnet.Pod
		want []string
	}{
		{&podnet.Pod{Namespace: "ns1", Name: "a", UID: "u1"}, []string{"c1"}},
		{&podnet.Pod{Namespace: "ns1", Name: "b", UID: "any"}, []string{"c4"}},
		{static, []string{"c1", "c2"}},
		{&podnet.Pod{Namespace: "ns1", Name: "c", UID: "u1"}, nil},
	} {
		if diff := cmp.Diff(tc.want, ids(tc.pod)); diff != "" {
			t.Errorf("%s/%s: sandboxes (-want +got):\n%s", tc.pod.Namespace, tc.pod.Name, diff)
		}
	}
	x.remove("c1")
	if got := ids(&podnet.Pod{Namespace: "ns1", Name: "a", UID: "u1"}); len(got) != 0 {
		t.Errorf("removed sandbox still found: %v", got)
	}
}

// TestHotplugConf: a sandbox added before the daemon started gets networks
// with the daemon's plugin keys, in its own version.
func TestHotplugConf(t *testing.T) {
	conf, err := config.ParseDaemon([]byte(`{"multusConfigFile":"/etc/cni/net.d/00-multus.conf","namespaceIsolation":true,"cniDir":"/var/lib/x","multusNamespace":"sys","dynamicNetworks":true}`))
	if err != nil {
		t.Fatal(err)
	}
	d := &dispatcher{conf: conf}
	pc, err := d.hotplugConf("0.4.0")
	if err != nil {
		t.Fatal(err)
	}
	if pc.CNIVersion != "0.4.0" || !pc.NamespaceIsolation || pc.CNIDir != "/var/lib/x" || pc.MultusNamespace != "sys" {
		t.Errorf("configuration %+v: want version 0.4.0 and the daemon's keys", pc)
	}
}
