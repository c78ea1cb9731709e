package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/polynet-cni/polynet/internal/mode/socketapi"
	"github.com/polynet-cni/polynet/test/recording"
	"github.com/polynet-cni/polynet/test/testbed"
)

// The tests in this file run the daemon as the thick manifest
// (deployments/multus-daemonset-thick.yml) deploys it: with exactly its
// ClusterRole, and with chrootDir, so that delegates run in the host's root.

// grant is one verb on one resource of one API group, as RBAC grants it.
type grant struct{ group, resource, verb string }

func (g grant) String() string {
	group := g.group
	if group == "" {
		group = "core"
	}
	return fmt.Sprintf("%s %s %s", g.verb, group, g.resource)
}

// keptUnused are grants of the manifest that the daemon does not use, and why
// the manifest keeps them. None today: upstream's role also grants events on
// events.k8s.io, which the daemon never uses (it records core/v1 events), so
// ours leaves it out.
var keptUnused = map[grant]string{}

// TestThickRoleAudit runs the daemon with a ServiceAccount bound to exactly the
// ClusterRole of the thick manifest and drives what it does with the API: the
// informers' start (with the client's watch-list streaming, the default, and
// without it, as against an API server that lacks it, when the informers list
// first), ADD and DEL (status patch, events), STATUS (the API server's
// readiness), an ADD whose pod is gone (a live read of the pod), ADD twice of a
// pod naming a missing NAD (a live read of the NAD; the same Warning event
// twice, which the recorder sends as a create, then a patch), the caches of
// ResourceClaims and of the node's ResourceSlices, and an ADD whose claims
// are not in them (a live read of a claim, a live list of a pool's slices).
// It then reads
// every request of the daemon's identity from the audit log: each must be
// allowed, and each rule the manifest grants must have been used, or be listed
// in keptUnused with the reason it stays.
func TestThickRoleAudit(t *testing.T) {
	bed := testbed.Require(t)
	rules, err := testbed.ClusterRoleRules(filepath.Join(bed.Root, testbed.ThickManifest))
	if err != nil {
		t.Fatal(err)
	}
	granted := map[grant]bool{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					granted[grant{g, res, v}] = true
				}
			}
		}
	}
	modes := []string{"watch-list", "list and watch"}
	used := map[grant]map[string]int{}
	nonResource := map[string]map[string]int{}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			if mode != "watch-list" {
				// client-go's switch for its informers' streaming list.
				t.Setenv("KUBE_FEATURE_WatchListClient", "false")
			}
			e := thickEnv(t, nil)
			driveDaemonAPI(t, e)
			reqs, err := e.cp.AuditRequests(e.daemon.User)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range reqs {
				if r.Code == 401 || r.Code == 403 {
					t.Errorf("request refused (%d): %s %s", r.Code, r.Kind(), r.URI)
				}
				if r.Resource == "" {
					if nonResource[r.Kind()] == nil {
						nonResource[r.Kind()] = map[string]int{}
					}
					nonResource[r.Kind()][mode]++
					continue
				}
				res := r.Resource
				if r.Subresource != "" {
					res += "/" + r.Subresource
				}
				g := grant{r.APIGroup, res, r.Verb}
				if !granted[g] {
					t.Errorf("request outside the manifest's role: %s (%s, code %d)", g, r.URI, r.Code)
				}
				if used[g] == nil {
					used[g] = map[string]int{}
				}
				used[g][mode]++
			}
		})
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "granted by the manifest\t%s\t%s\tnote\n", modes[0], modes[1])
	var all []grant
	for g := range granted {
		all = append(all, g)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].String() < all[j].String() })
	for _, g := range all {
		note := ""
		if used[g] == nil {
			note = keptUnused[g]
			if note == "" {
				t.Errorf("the manifest grants %s, which the daemon never used: remove it or say in keptUnused why it stays", g)
			}
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", g, used[g][modes[0]], used[g][modes[1]], note)
	}
	for k, n := range nonResource {
		fmt.Fprintf(w, "%s\t%d\t%d\tnot a resource: granted by the default roles system:public-info-viewer (/readyz) and system:discovery (/apis)\n", k, n[modes[0]], n[modes[1]])
	}
	w.Flush()
	t.Logf("the daemon's requests by grant:\n%s", b.String())
}

// driveDaemonAPI makes the daemon use every kind of request it makes.
func driveDaemonAPI(t *testing.T, e *env) {
	t.Helper()
	const v = "1.1.0"
	e.nad("sec", e.recorderConf(v, "sec", nil), nil)
	conf := e.multusConf(v, nil)
	_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
	e.daemon.AwaitCached(t, "pod", e.namespace, "pod-1", sb.Pod.UID)
	e.add(conf, sb)
	e.del(conf, sb)
	if err := e.rt.Status(e.ctx, conf); err != nil {
		t.Errorf("STATUS: %v", err)
	}
	gone := testbed.Sandbox{Pod: testbed.Pod{Namespace: e.namespace, Name: "gone", UID: "2b9e4c8e-6a53-4d0e-8d55-0c6f7e4d2a11"},
		ContainerID: fmt.Sprintf("ctr-%d-gone", e.idx), NetNS: testbed.NewNetNS(t).Path}
	e.add(conf, gone) // the pod is gone: an empty result, nothing attached
	e.del(conf, gone)
	_, sb2, _ := e.pod("pod-2", map[string]string{"k8s.v1.cni.cncf.io/networks": "missing"})
	e.daemon.AwaitCached(t, "pod", e.namespace, "pod-2", sb2.Pod.UID)
	for range 2 {
		if _, err := e.rt.Add(e.ctx, conf, sb2); err == nil {
			t.Fatal("ADD of a pod naming a missing NAD succeeded")
		}
	}
	// The recorder sends events in the background: wait for the repeat.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		list, err := e.kc.CoreV1().Events(e.namespace).List(e.ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=pod-2"})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) == 1 && list.Items[0].Count >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod-2's events %+v: want one event, counted twice", list.Items)
		}
	}
	e.del(conf, sb2)

	// DRA: a pod whose network needs a device names a claim that does not
	// exist (a live read of the claim) and one allocated a device of a pool
	// that has no slice on the node (a live list of that pool's slices). It
	// gets no device, and the ADD fails.
	d := newDRA(e)
	e.nad("dra", e.recorderConf(v, "dra", nil), map[string]string{"k8s.v1.cni.cncf.io/resourceName": draResource})
	pod, sb3 := d.pod("pod-3", []string{"missing", "pod-3-net"}, map[string]string{"k8s.v1.cni.cncf.io/networks": "dra"})
	d.claim("pod-3-net", []string{draNICDriver + "/elsewhere/vf-0"}, pod)
	if _, err := e.rt.Add(e.ctx, conf, sb3); err == nil {
		t.Fatal("ADD of a pod whose claims give its network no device succeeded")
	}
	e.del(conf, sb3)
}

// TestThickDelegateInChroot runs the daemon with chrootDir, as the thick
// manifest does ("/hostroot", where the host's / is mounted). A folder stands
// for the host's root: it alone holds the recorder, at the binDir the
// configurations name, and the recorder writes its records at a path inside it.
// The runtime's ADD and DEL through the shim, and upstream's /delegate ADD
// (hot-plug) and /delegate DEL (unplug) through the real daemon, run every
// delegate inside that root: the records appear under it, never at the same path
// on the host, though the host's copy of the recorder is in CNI_PATH. /delegate
// DEL takes the interface out of the sandbox's record, so the sandbox's DEL does
// not tear it down twice.
func TestThickDelegateInChroot(t *testing.T) {
	const v = "1.0.0"
	root := t.TempDir()
	hostTop := fmt.Sprintf("/var/lib/polynet-chroot-test-%d", os.Getpid())
	binDir, recordDir := hostTop+"/bin", hostTop+"/records"
	t.Cleanup(func() { os.RemoveAll(hostTop) })
	data, err := os.ReadFile(testbed.Binary(t, "recorder"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, binDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, binDir, "recorder"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	cniDir := filepath.Join(t.TempDir(), "cni")
	e := thickEnv(t, map[string]any{"chrootDir": root, "cniDir": cniDir, "binDir": binDir})
	e.cniDir = cniDir
	recorder := func(name string, extra map[string]any) map[string]any {
		conf := map[string]any{"cniVersion": v, "name": name, "type": "recorder", "recordDir": recordDir}
		for k, val := range extra {
			conf[k] = val
		}
		return conf
	}
	conf := e.multusConf(v, map[string]any{"delegates": []any{recorder("cluster", nil)}, "binDir": binDir})
	pod, sb, _ := e.pod("pod-1", nil)
	e.add(conf, sb)

	client := socketapi.Client{Socket: socketapi.SocketPath(e.daemon.SocketDir), ConnectTimeout: time.Second, RequestTimeout: time.Minute}
	hot, _ := json.Marshal(recorder("hot", nil))
	hotSandbox := testbed.Sandbox{Pod: testbed.Pod{Namespace: e.namespace, Name: "pod-1", UID: string(pod.UID)},
		ContainerID: sb.ContainerID, NetNS: sb.NetNS, IfName: "pod1234"}
	for _, command := range []string{"ADD", "DEL"} {
		env := testbed.CNIEnv(command, hotSandbox, e.bed.CNIPluginDir(), testbed.BinDir(t, "recorder"))
		if _, err := client.Do(e.ctx, socketapi.PathDelegate, &socketapi.Request{Env: env, Config: hot}); err != nil {
			t.Fatalf("/delegate %s: %v\n%s", command, err, e.log())
		}
	}
	if rec := readFile(e.recordFile(sb)); strings.Contains(rec, "pod1234") {
		t.Errorf("the sandbox's record still lists the unplugged pod1234: %s", rec)
	}
	e.del(conf, sb)

	recs, err := recording.Read(filepath.Join(root, recordDir))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Command+" "+r.Env["CNI_IFNAME"])
	}
	if want := "ADD eth0, ADD pod1234, DEL pod1234, DEL eth0"; strings.Join(got, ", ") != want {
		t.Errorf("delegate calls inside the root: %s; want %s", strings.Join(got, ", "), want)
	}
	if _, err := os.Stat(recordDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("records at %s on the host (%v): a delegate ran outside the root", recordDir, err)
	}
}
