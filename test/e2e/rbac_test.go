package e2e

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/polynet-cni/polynet/test/testbed"
)

// shippedRules returns the rules of the ClusterRole that the thin DaemonSet's
// manifest ships, so the test proves the manifest operators install.
func shippedRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	bed, err := testbed.Load()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := testbed.ClusterRoleRules(filepath.Join(bed.Root, testbed.ThinManifest))
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// TestMinimalRole runs ADD and DEL with a ServiceAccount bound to the ClusterRole of
// the thin manifest (get pods, get NADs, patch pods/status, create events;
// get ResourceClaims, list ResourceSlices) and nothing else, and reads the API
// server's audit log to prove that the plugin made only requests of those
// kinds, every one of them allowed, and every one of them: upstream's
// ClusterRole grants everything on k8s.cni.cncf.io and update on pods (Multus
// #181). The second pod's network takes a device of its DRA ResourceClaim;
// the test logs the requests of that ADD.
func TestMinimalRole(t *testing.T) {
	const v = "1.0.0"
	e := newEnv(t)
	cfg, err := e.cp.ServiceAccount(e.ctx, e.namespace, "multus", shippedRules(t), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeKubeconfig(e.kubeconfig, cfg); err != nil {
		t.Fatal(err)
	}
	e.nad("sec", e.recorderConf(v, "sec", nil), nil)
	_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
	conf := e.multusConf(v, nil)
	e.add(conf, sb)
	if st := e.networkStatus("pod-1"); len(st) != 2 {
		t.Errorf("network-status %+v, want 2 entries written with the minimal role", st)
	}
	e.del(conf, sb)

	d := newDRA(e)
	e.nad("dra", e.recorderConf(v, "dra", nil), map[string]string{"k8s.v1.cni.cncf.io/resourceName": draResource})
	pod, sbDRA := d.pod("pod-dra", []string{"pod-dra-net"}, map[string]string{"k8s.v1.cni.cncf.io/networks": "dra"})
	d.claim("pod-dra-net", []string{draNICDriver + "/vf-0", draGPUDriver + "/gpu-0"}, pod)
	noKubelet := filepath.Join(t.TempDir(), "absent")
	confDRA := e.multusConf(v, map[string]any{"podResourcesSocket": noKubelet, "kubeletCheckpoint": noKubelet})
	start := time.Now()
	e.add(confDRA, sbDRA)
	end := time.Now()
	e.del(confDRA, sbDRA)

	user := fmt.Sprintf("system:serviceaccount:%s:multus", e.namespace)
	events, err := e.cp.AuditEvents(user)
	if err != nil {
		t.Fatal(err)
	}
	perKind := map[string]int{}
	for _, ev := range events {
		if !ev.Received.Before(start) && ev.Received.Before(end) {
			perKind[ev.Kind()]++
		}
	}
	t.Logf("requests of the thin plugin's ADD of a pod with one DRA network (%s): %v", sbDRA.Pod.Name, perKind)
	allowed := map[string]bool{"get pods": true, "get network-attachment-definitions": true, "patch pods/status": true, "create events": true,
		"get resourceclaims": true, "list resourceslices": true}
	seen := map[string]bool{}
	for _, ev := range events {
		kind := ev.Verb + " " + ev.Resource
		if ev.Subresource != "" {
			kind += "/" + ev.Subresource
		}
		seen[kind] = true
		if !allowed[kind] || ev.Code >= 400 {
			t.Errorf("request %s %s/%s answered %d: outside the minimal role or refused", kind, ev.Namespace, ev.Name, ev.Code)
		}
	}
	var kinds []string
	for k := range seen {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	if got := strings.Join(kinds, ", "); got != "create events, get network-attachment-definitions, get pods, get resourceclaims, list resourceslices, patch pods/status" {
		t.Errorf("requests made: %s; want exactly the six kinds of the minimal role", got)
	}
}
