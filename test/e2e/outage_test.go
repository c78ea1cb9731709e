package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/test/testbed"
)

// TestDelWithAPIServerStopped: DEL reads the attachment record and never needs the
// API server; an ADD while the API server is down fails within the configured
// retry budget with "try again later" (11), so the runtime retries.
func TestDelWithAPIServerStopped(t *testing.T) {
	const v = "1.0.0"
	e := newEnv(t)
	cp := testbed.StartControlPlane(t) // our own, to stop
	if err := writeKubeconfig(e.kubeconfig, cp.AdminConfig()); err != nil {
		t.Fatal(err)
	}
	kc, nc := cp.AdminClients(t)
	testbed.CreateNamespace(e.ctx, t, kc, e.namespace)
	testbed.CreateNAD(e.ctx, t, nc, e.namespace, "sec", e.recorderConf(v, "sec", nil), nil)
	pod := testbed.CreatePod(e.ctx, t, kc, e.namespace, "pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
	netns := testbed.NewNetNS(t)
	sb := testbed.Sandbox{Pod: testbed.Pod{Namespace: e.namespace, Name: "pod-1", UID: string(pod.UID)}, ContainerID: "ctr-outage", NetNS: netns.Path}
	conf := e.multusConf(v, map[string]any{"apiRetryBudget": "2s", "apiTimeout": "1s"})
	e.add(conf, sb)

	cp.Stop()
	e.del(conf, sb)
	if got := links(t, netns); len(got) != 1 {
		t.Errorf("links left after DEL without the API server: %v", got)
	}
	if n := len(e.recordsFor("DEL")); n != 1 {
		t.Errorf("%d secondary DELs, want 1", n)
	}

	start := time.Now()
	_, err := e.rt.Add(e.ctx, conf, sb)
	if ce := cniError(t, err); ce.Code != cnicode.TryAgainLater || !strings.Contains(ce.Msg, "pods/pod-1") {
		t.Errorf("ADD without the API server: got %v, want code 11", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("ADD took %s to give up; the retry budget is 2s", took)
	}
}

// TestParallelPods adds and deletes 20 pods at once, each with the real bridge +
// host-local cluster network and a secondary network, and checks every pod got
// its interfaces and nothing leaked: no address, link, record or process.
func TestParallelPods(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		const pods = 20
		e := newEnv(t)
		e.nad("sec", e.recorderConf(v, "sec", nil), nil)
		conf := e.multusConf(v, nil)
		sbs := make([]testbed.Sandbox, pods)
		nss := make([]*testbed.NetNS, pods)
		for i := range pods {
			_, sbs[i], nss[i] = e.pod(fmt.Sprintf("pod-%d", i), map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
		}
		run := func(op string, f func(testbed.Sandbox) error) {
			var wg sync.WaitGroup
			errs := make([]error, pods)
			for i := range pods {
				wg.Go(func() { errs[i] = f(sbs[i]) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("%s of pod-%d: %v", op, i, err)
				}
			}
		}
		run("ADD", func(sb testbed.Sandbox) error { _, err := e.rt.Add(e.ctx, conf, sb); return err })
		addrs := map[string]bool{}
		for i, ns := range nss {
			got := links(t, ns)
			if len(got["eth0"]) != 1 {
				t.Errorf("pod-%d has links %v", i, got)
				continue
			}
			if addrs[got["eth0"][0]] {
				t.Errorf("address %s given twice", got["eth0"][0])
			}
			addrs[got["eth0"][0]] = true
			if st := e.networkStatus(fmt.Sprintf("pod-%d", i)); len(st) != 2 {
				t.Errorf("pod-%d network-status %+v", i, st)
			}
		}
		run("DEL", func(sb testbed.Sandbox) error { return e.rt.Del(e.ctx, conf, sb) })
		for i, ns := range nss {
			if got := links(t, ns); len(got) != 1 {
				t.Errorf("pod-%d links after DEL: %v", i, got)
			}
		}
	})
}
