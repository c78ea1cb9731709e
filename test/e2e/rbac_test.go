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
// the thin manifest (get pods, get NADs, patch pods/status, create events)
// and nothing else, and reads the API server's audit log to prove that the plugin made
// only requests of those kinds, every one of them allowed: upstream's ClusterRole
// grants everything on k8s.cni.cncf.io and update on pods (Multus #181).
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

	events, err := e.cp.AuditEvents(fmt.Sprintf("system:serviceaccount:%s:multus", e.namespace))
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"get pods": true, "get network-attachment-definitions": true, "patch pods/status": true, "create events": true}
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
	if got := strings.Join(kinds, ", "); got != "create events, get network-attachment-definitions, get pods, patch pods/status" {
		t.Errorf("requests made: %s; want exactly the four kinds of the minimal role", got)
	}
}
