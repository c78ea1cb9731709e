package smoke

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/polynet-cni/polynet/test/recording"
	"github.com/polynet-cni/polynet/test/testbed"
)

// TestServiceAccountBoundToRole proves the restricted identity helper: a token
// minted through the TokenRequest API for a ServiceAccount bound to "get pods" can
// read a pod and is refused (403) everything else.
func TestServiceAccountBoundToRole(t *testing.T) {
	cp := testbed.SharedControlPlane(t)
	ctx := testbed.Context(t)
	admin, _ := cp.AdminClients(t)
	testbed.CreateNamespace(ctx, t, admin, "rbac")
	testbed.CreatePod(ctx, t, admin, "rbac", "pod-1", nil)

	// ServiceAccount waits for RBAC to grant the rule: bound that wait.
	saCtx, cancel := context.WithTimeout(ctx, testbed.StartTimeout)
	defer cancel()
	cfg, err := cp.ServiceAccount(saCtx, "rbac", "reader", []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
	}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Pods("rbac").Get(ctx, "pod-1", metav1.GetOptions{}); err != nil {
		t.Errorf("get pod with the granted role: %v", err)
	}
	_, err = kc.CoreV1().Pods("rbac").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("list pods without the verb: got %v, want 403 Forbidden", err)
	}
	err = kc.CoreV1().Pods("rbac").Delete(ctx, "pod-1", metav1.DeleteOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("delete pod without the verb: got %v, want 403 Forbidden", err)
	}
}

// TestOurBinariesAnswerVersion runs each binary as a runtime would, and by hand.
func TestOurBinariesAnswerVersion(t *testing.T) {
	testbed.Require(t)
	ctx := context.Background()
	for _, name := range []string{"multus", "multus-shim", "multus-daemon"} {
		bin := testbed.Binary(t, name)
		for _, v := range cniVersions {
			t.Run(name+"/"+v, func(t *testing.T) {
				res, err := testbed.ExecPlugin(ctx, testbed.Invocation{
					Binary: bin,
					Env:    map[string]string{"CNI_COMMAND": "VERSION"},
					Stdin:  []byte(fmt.Sprintf(`{"cniVersion":%q}`, v)),
				})
				if err != nil || res.ExitCode != 0 {
					t.Fatalf("VERSION: exit %d, %v, stderr %s", res.ExitCode, err, res.Stderr)
				}
				var got struct {
					CNIVersion        string   `json:"cniVersion"`
					SupportedVersions []string `json:"supportedVersions"`
				}
				if err := json.Unmarshal(res.Stdout, &got); err != nil {
					t.Fatalf("VERSION output %q: %v", res.Stdout, err)
				}
				if got.CNIVersion != v {
					t.Errorf("cniVersion %q, want %q", got.CNIVersion, v)
				}
				if diff := cmp.Diff(cniVersions, got.SupportedVersions); diff != "" {
					t.Errorf("supportedVersions (-want +got):\n%s", diff)
				}
			})
		}
		t.Run(name+"/--version", func(t *testing.T) {
			res, err := testbed.ExecPlugin(ctx, testbed.Invocation{Binary: bin, Args: []string{"--version"}})
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("--version: exit %d, %v", res.ExitCode, err)
			}
			want := fmt.Sprintf("%s version %s, commit %s", name, testbed.TestBuildVersion, testbed.TestBuildCommit)
			if !strings.HasPrefix(string(res.Stdout), want) {
				t.Errorf("--version printed %q, want it to start with %q", res.Stdout, want)
			}
		})
	}
}

// TestRecorderDelegate proves the recording plugin: through libcni it records the
// exact config and the Kubernetes CNI_ARGS it was given, and returns a scripted CNI
// error with its code.
func TestRecorderDelegate(t *testing.T) {
	testbed.Require(t)
	ctx := context.Background()
	recordDir, cacheDir := t.TempDir(), t.TempDir()
	testbed.CheckLeaks(t, testbed.LeakOptions{Dirs: []string{cacheDir}})
	rt := testbed.NewRuntime([]string{testbed.BinDir(t, "recorder")}, cacheDir)
	sb := testbed.Sandbox{
		Pod:         testbed.Pod{Namespace: "ns1", Name: "pod-1", UID: "uid-1"},
		ContainerID: "ctr-1",
		NetNS:       "/var/run/netns/none",
	}
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"rec","plugins":[{"type":"recorder","recordDir":%q,
		"errors":{"DEL":{"code":117,"msg":"scripted failure"}}}]}`, recordDir)

	res, err := rt.Add(ctx, []byte(conf), sb)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if got, _ := json.Marshal(res); !strings.Contains(string(got), "192.0.2.2") {
		t.Errorf("ADD result %s lacks the default address", got)
	}
	err = rt.Del(ctx, []byte(conf), sb)
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != 117 {
		t.Errorf("DEL: got %v, want the scripted CNI error 117", err)
	}

	recs, err := recording.Read(recordDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Command != "ADD" || recs[1].Command != "DEL" {
		t.Fatalf("records %+v, want ADD then DEL", recs)
	}
	for key, want := range map[string]string{"K8S_POD_NAMESPACE": "ns1", "K8S_POD_NAME": "pod-1", "K8S_POD_UID": "uid-1", "K8S_POD_INFRA_CONTAINER_ID": "ctr-1"} {
		if got, _ := recs[0].Arg(key); got != want {
			t.Errorf("CNI_ARGS %s = %q, want %q", key, got, want)
		}
	}
	if recs[0].Env["CNI_IFNAME"] != "eth0" || recs[0].Env["CNI_CONTAINERID"] != "ctr-1" {
		t.Errorf("recorded env %v", recs[0].Env)
	}
	var stdin map[string]any
	if err := recs[0].Conf(&stdin); err != nil || stdin["name"] != "rec" || stdin["recordDir"] != recordDir {
		t.Errorf("recorded stdin %s (%v)", recs[0].Stdin, err)
	}
	// libcni keeps a cached result of the ADD; the failed DEL keeps it too. Remove
	// it as the runtime would after a successful retry.
	if err := os.RemoveAll(filepath.Join(cacheDir, "results")); err != nil {
		t.Fatal(err)
	}
}
