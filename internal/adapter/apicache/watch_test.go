package apicache

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// lockedBuffer is a log destination the informers' goroutines may share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestWatchAndLogArrivals: the pods listed at start are passed to
// WatchNetworks' function, and their arrival, and the NADs', is logged at
// debug level once the cache holds them.
func TestWatchAndLogArrivals(t *testing.T) {
	f := newFakeAPI(t)
	f.pods = []corev1.Pod{fullPod("team-a", "web", "1", "node1")}
	f.nads = []nadv1.NetworkAttachmentDefinition{fullNAD("team-a", "net1", `{"cniVersion":"1.0.0","type":"macvlan"}`)}
	var logs lockedBuffer
	seen := make(chan podnet.PodRef, 4)
	c := startCacheWith(t, f, "node1", func(c *Cache) {
		if err := c.LogArrivals(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))); err != nil {
			t.Fatal(err)
		}
		if err := c.WatchNetworks(func(r podnet.PodRef) { seen <- r }); err != nil {
			t.Fatal(err)
		}
	})
	select {
	case r := <-seen:
		if r != (podnet.PodRef{Namespace: "team-a", Name: "web", UID: "uid-1"}) {
			t.Errorf("passed %+v, want team-a/web", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the listed pod was never passed on")
	}
	if pod := c.CachedPod(podnet.PodRef{Namespace: "team-a", Name: "web"}); pod == nil || pod.UID != "uid-1" {
		t.Errorf("CachedPod = %+v, want the cached pod", pod)
	}
	for _, want := range []string{`msg="cache added" kind=pod object=team-a/web uid=uid-1`, `msg="cache added" kind=NetworkAttachmentDefinition object=team-a/net1`} {
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(logs.String(), want) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}
