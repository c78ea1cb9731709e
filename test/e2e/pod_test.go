package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/test/testbed"
)

// TestPodIdentity: a sandbox whose K8S_POD_UID is not the API pod's fails the ADD
// (the pod was recreated under the same name), except for a static pod, whose API
// object is a mirror with a UID of its own; a pod missing from the API gets an
// empty result and no attachment, as upstream does.
func TestPodIdentity(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		conf := e.multusConf(v, map[string]any{"delegates": []any{e.recorderMap(v, "cluster")}})

		_, sb, _ := e.pod("recreated", nil)
		sb.Pod.UID = "00000000-0000-0000-0000-000000000000"
		_, err := e.rt.Add(e.ctx, conf, sb)
		if ce := cniError(t, err); ce.Code != cnicode.PodUIDMismatch || !strings.Contains(ce.Msg, e.namespace+"/recreated") {
			t.Errorf("UID mismatch: got %v, want code %d naming the pod", err, cnicode.PodUIDMismatch)
		}

		_, sb, _ = e.pod("static", map[string]string{"kubernetes.io/config.source": "file"})
		sb.Pod.UID = "11111111-0000-0000-0000-000000000000"
		e.add(conf, sb)
		e.del(conf, sb)

		sb = e.sandboxFor("absent", "22222222-0000-0000-0000-000000000000")
		netns := testbed.NewNetNS(t)
		sb.NetNS = netns.Path
		res := e.add(conf, sb)
		cur, err := current.NewResultFromResult(res)
		if err != nil || len(cur.Interfaces) != 1 || cur.Interfaces[0].Name != "eth0" || len(cur.IPs) != 1 || !cur.IPs[0].Address.IP.IsUnspecified() {
			t.Errorf("pod not found: result %v (%v), want the empty result", res, err)
		}
		if n := len(e.recordsFor("ADD")); n != 1 { // the static pod's only
			t.Errorf("%d delegate ADDs, want none for the missing pod", n)
		}
		if _, err := os.Stat(e.recordFile(sb)); !os.IsNotExist(err) {
			t.Errorf("a record was written for a missing pod")
		}
		e.del(conf, sb)
	})
}

// TestReadinessIndicator: ADD waits, bounded, for readinessindicatorfile and fails
// with "try again later" (11) when it does not come; it proceeds as soon as the
// file appears; DEL never waits.
func TestReadinessIndicator(t *testing.T) {
	const v = "1.0.0"
	e := newEnv(t)
	indicator := filepath.Join(t.TempDir(), "ready")
	conf := e.multusConf(v, map[string]any{
		"delegates": []any{e.recorderMap(v, "cluster")}, "readinessindicatorfile": indicator, "readinessIndicatorTimeout": "1s",
	})
	_, sb, _ := e.pod("pod-1", nil)
	start := time.Now()
	_, err := e.rt.Add(e.ctx, conf, sb)
	if ce := cniError(t, err); ce.Code != cnicode.TryAgainLater || !strings.Contains(ce.Msg, indicator) {
		t.Errorf("got %v, want code 11 naming %s", err, indicator)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("ADD gave up after %s, before the 1s timeout", waited)
	}

	go func() {
		time.Sleep(500 * time.Millisecond)
		_ = os.WriteFile(indicator, nil, 0o644)
	}()
	slow := e.multusConf(v, map[string]any{
		"delegates": []any{e.recorderMap(v, "cluster")}, "readinessindicatorfile": indicator, "readinessIndicatorTimeout": "20s",
	})
	e.add(slow, sb)
	if err := os.Remove(indicator); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	e.del(slow, sb)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("DEL took %s without the indicator: it must not wait", took)
	}
}

// TestDelegatesOnlyMode: without a kubeconfig and outside a cluster the plugin runs
// the inline delegates and needs no Kubernetes at all.
func TestDelegatesOnlyMode(t *testing.T) {
	for _, v := range cniVersions {
		t.Run(v, func(t *testing.T) {
			e := newEnv(t)
			conf := e.multusConf(v, map[string]any{"kubeconfig": nil})
			netns := testbed.NewNetNS(t)
			sb := testbed.Sandbox{Pod: testbed.Pod{Namespace: "nowhere", Name: "p"}, ContainerID: "ctr-nok8s", NetNS: netns.Path}
			e.add(conf, sb)
			if got := links(t, netns); len(got["eth0"]) != 1 {
				t.Errorf("links %v, want eth0 with an address", got)
			}
			e.del(conf, sb)
		})
	}
}

// TestCredentialsAreReadOnEveryInvocation: the kubeconfig is read per invocation,
// so replacing an expired or revoked token on disk fixes the next ADD without
// restarting anything; an unauthorized client fails with a clear, non-retryable
// error.
func TestCredentialsAreReadOnEveryInvocation(t *testing.T) {
	const v = "1.0.0"
	e := newEnv(t)
	conf := e.multusConf(v, map[string]any{"delegates": []any{e.recorderMap(v, "cluster")}})
	bad := e.cp.AdminConfig()
	bad.CertData, bad.KeyData, bad.BearerToken = nil, nil, "not-a-token"
	if err := testbed.WriteKubeconfig(e.kubeconfig, bad); err != nil {
		t.Fatal(err)
	}
	_, sb, _ := e.pod("pod-1", nil)
	_, err := e.rt.Add(e.ctx, conf, sb)
	if ce := cniError(t, err); ce.Code != cnicode.KubernetesAPI || !strings.Contains(ce.Msg, "401") {
		t.Errorf("bad token: got %v, want code %d with the 401", err, cnicode.KubernetesAPI)
	}
	cfg, err := e.cp.ServiceAccount(e.ctx, e.namespace, "rotated", shippedRules(t), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := testbed.WriteKubeconfig(e.kubeconfig, cfg); err != nil {
		t.Fatal(err)
	}
	e.add(conf, sb)
	e.del(conf, sb)
}

// TestResultVersionAndStatusShape: the result is the cluster network's in the
// configuration's cniVersion, and network-status follows section 5: one entry per
// attachment, "default" written on every entry and true only for the cluster
// network, name namespace/name.
func TestResultVersionAndStatusShape(t *testing.T) {
	modes(t, func(t *testing.T) {
		for _, v := range cniVersions {
			t.Run(v, func(t *testing.T) {
				e := newEnv(t)
				e.nad("sec", e.recorderConf(v, "sec", map[string]any{"ip": "198.51.100.7/24"}), nil)
				_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
				conf := e.multusConf(v, nil)
				res := e.add(conf, sb)
				raw, _ := json.Marshal(res)
				if res.Version() != v || strings.Contains(string(raw), "198.51.100.7") {
					t.Errorf("result %s (version %s): want the cluster network's, in %s", raw, res.Version(), v)
				}
				pod, err := e.kc.CoreV1().Pods(e.namespace).Get(e.ctx, "pod-1", metaGet)
				if err != nil {
					t.Fatal(err)
				}
				value := pod.Annotations["k8s.v1.cni.cncf.io/network-status"]
				if strings.Count(value, `"default":`) != 2 || strings.Count(value, `"default":true`) != 1 {
					t.Errorf("network-status %s: want default on both entries, true once", value)
				}
				if !strings.Contains(value, `"name":"`+e.namespace+`/sec"`) || !strings.Contains(value, `"ips":["198.51.100.7"]`) {
					t.Errorf("network-status %s lacks the secondary entry", value)
				}
				e.del(conf, sb)
			})
		}
	})
}

// TestBadConfigurationNamesTheField: a bad plugin configuration fails with CNI code
// 7 and a message naming the key and what is allowed, and leaves nothing behind.
func TestBadConfigurationNamesTheField(t *testing.T) {
	modes(t, func(t *testing.T) {
		e := newEnv(t)
		_, sb, _ := e.pod("pod-1", nil)
		for field, value := range map[string]any{
			"multusNamespace": "Bad_Namespace", // not logLevel: the test daemon sets its own, which wins in thick mode
			"apiTimeout":      10,
			"cniVersion":      "9.9.9",
			"confDir":         "relative/path",
		} {
			_, err := e.rt.Add(e.ctx, e.multusConf("1.0.0", map[string]any{field: value}), sb)
			if ce := cniError(t, err); ce.Code != cnicode.InvalidNetworkConfig || !strings.Contains(ce.Msg, `"`+field+`"`) || !strings.Contains(ce.Msg, "want") {
				t.Errorf("%s=%v: got %v, want code 7 naming the field and what is allowed", field, value, err)
			}
		}
	})
}
