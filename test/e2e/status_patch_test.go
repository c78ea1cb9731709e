package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"

	"github.com/polynet-cni/polynet/internal/adapter/apiclient"
	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/test/testbed"
)

// otherControllerAnnotations are what "another controller" keeps on a pod.
var otherControllerAnnotations = map[string]string{
	"example.com/owner":    "other-controller",
	"example.com/checksum": "sha256:0f1e2d",
}

// actAsOtherController writes, as another controller would with client-go, an
// annotation and a label on the pod, and its status: conditions (one of its
// own type, as a readiness gate's controller writes), addresses, a message.
// It returns the pod as it then is.
func actAsOtherController(t *testing.T, e *env, name string) *corev1.Pod {
	t.Helper()
	meta, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": otherControllerAnnotations, "labels": map[string]string{"app": "web"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	pods := e.kc.CoreV1().Pods(e.namespace)
	if _, err := pods.Patch(e.ctx, name, ktypes.MergePatchType, meta, metav1.PatchOptions{FieldManager: "other-controller"}); err != nil {
		t.Fatal(err)
	}
	pod, err := pods.Get(e.ctx, name, metaGet)
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	pod.Status.Conditions = append(pod.Status.Conditions,
		corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		corev1.PodCondition{Type: "example.com/gate", Status: corev1.ConditionFalse, Reason: "Waiting",
			Message: "the gate is not open yet", LastTransitionTime: now})
	pod.Status.Message, pod.Status.Reason = "set by another controller", "OtherController"
	pod.Status.HostIP, pod.Status.HostIPs = "192.0.2.10", []corev1.HostIP{{IP: "192.0.2.10"}}
	pod, err = pods.UpdateStatus(e.ctx, pod, metav1.UpdateOptions{FieldManager: "other-controller"})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// TestStatusPatchKeepsOtherFields: the ADD writes network-status with a merge
// patch of pods/status that names that annotation alone. Against the real API
// server, every other annotation, the labels, the spec and the whole status
// that another controller wrote are what they were; the annotation itself
// has the pod's networks.
func TestStatusPatchKeepsOtherFields(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		e.nad("sec", e.recorderConf(v, "sec", nil), nil)
		_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
		before := actAsOtherController(t, e, "pod-1")
		conf := e.multusConf(v, nil)
		e.add(conf, sb)

		after, err := e.kc.CoreV1().Pods(e.namespace).Get(e.ctx, "pod-1", metaGet)
		if err != nil {
			t.Fatal(err)
		}
		st, err := netstatus.Decode(after.Annotations[netstatus.Annotation])
		if err != nil || len(st) != 2 {
			t.Errorf("network-status %+v (%v), want the cluster network and sec", st, err)
		}
		wantAnnotations := maps.Clone(before.Annotations)
		wantAnnotations[netstatus.Annotation] = after.Annotations[netstatus.Annotation]
		if diff := cmp.Diff(wantAnnotations, after.Annotations); diff != "" {
			t.Errorf("annotations (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(before.Labels, after.Labels); diff != "" {
			t.Errorf("labels (-before +after):\n%s", diff)
		}
		if !apiequality.Semantic.DeepEqual(before.Status, after.Status) {
			t.Errorf("status changed:\nbefore %s\nafter  %s", asJSON(before.Status), asJSON(after.Status))
		}
		if !apiequality.Semantic.DeepEqual(before.Spec, after.Spec) {
			t.Errorf("spec changed:\nbefore %s\nafter  %s", asJSON(before.Spec), asJSON(after.Spec))
		}
		e.del(conf, sb)
	})
}

func asJSON(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

// statusWriter is a ServiceAccount with the thin plugin's role, and its
// kubeconfig, so the audit log tells its requests from the test's.
func statusWriter(t *testing.T, e *env, name string) (user, kubeconfig string) {
	t.Helper()
	cfg, err := e.cp.ServiceAccount(e.ctx, e.namespace, name, shippedRules(t), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := testbed.WriteKubeconfig(kubeconfig, cfg); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("system:serviceaccount:%s:%s", e.namespace, name), kubeconfig
}

// statusPatches returns "code" of each PATCH of pod name's status that user
// made since start.
func statusPatches(t *testing.T, e *env, user, name string, since time.Time) []int {
	t.Helper()
	reqs, err := e.cp.AuditRequests(user)
	if err != nil {
		t.Fatal(err)
	}
	var codes []int
	for _, r := range reqs {
		if r.Kind() == "patch pods/status" && r.Name == name && !r.Received.Before(since) {
			codes = append(codes, r.Code)
		}
	}
	return codes
}

// recreate deletes pod name at once and creates it again under the same name,
// as a StatefulSet does; the new pod has another UID, and another controller's
// fields.
func recreate(t *testing.T, e *env, name string, annotations map[string]string) *corev1.Pod {
	t.Helper()
	old, err := e.kc.CoreV1().Pods(e.namespace).Get(e.ctx, name, metaGet)
	if err != nil {
		t.Fatal(err)
	}
	e.deletePod(name)
	testbed.CreatePod(e.ctx, t, e.kc, e.namespace, name, annotations)
	pod := actAsOtherController(t, e, name)
	if pod.UID == old.UID {
		t.Fatal("the recreated pod has the old UID")
	}
	return pod
}

// TestStatusPatchUIDMismatch: the thin plugin's status patch carries the UID of
// the pod the sandbox is for. Against the real API server, after the pod was
// deleted and recreated under the same name, the patch is refused (422: the
// UID is immutable) and the client makes it once only, since no retry can
// succeed: the error is a *podnet.PodRecreatedError with code 100 naming
// the pod and the old UID. The new pod is untouched.
func TestStatusPatchUIDMismatch(t *testing.T) {
	e := newEnv(t)
	user, kubeconfig := statusWriter(t, e, "status-writer")
	old, _, _ := e.pod("web-0", nil)
	now := recreate(t, e, "web-0", nil)

	cfg, err := apiclient.LoadKubeconfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := apiclient.New(cfg, 10*time.Second, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ref := podnet.PodRef{Namespace: e.namespace, Name: "web-0", UID: string(old.UID)}
	err = c.PatchNetworkStatus(e.ctx, ref, `[{"name":"cluster-net","interface":"eth0","default":true}]`)
	var recreated *podnet.PodRecreatedError
	if !errors.As(err, &recreated) || recreated.CNICode() != cnicode.PodUIDMismatch {
		t.Fatalf("patch of the recreated pod: %v, want a PodRecreatedError with code %d", err, cnicode.PodUIDMismatch)
	}
	for _, part := range []string{ref.String(), string(old.UID), "recreated", "metadata.uid"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err, part)
		}
	}
	if codes := statusPatches(t, e, user, "web-0", start); len(codes) != 1 || codes[0] != 422 {
		t.Errorf("status patches %v, want one, refused with 422", codes)
	}
	after, err := e.kc.CoreV1().Pods(e.namespace).Get(e.ctx, "web-0", metaGet)
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != now.ResourceVersion {
		t.Errorf("the recreated pod changed: resourceVersion %s, was %s; annotations %v", after.ResourceVersion, now.ResourceVersion, after.Annotations)
	}

	// The current UID is accepted, and only the annotation changes.
	ref.UID = string(now.UID)
	if err := c.PatchNetworkStatus(e.ctx, ref, "[]"); err != nil {
		t.Fatalf("patch with the current UID: %v", err)
	}
}

// TestAddRecreatedPodFails: the pod is deleted and recreated under the same name
// while its ADD runs (after the pod was read, while a delegate works). The
// status patch is refused on the UID; the sandbox belongs to a pod that no
// longer exists, so the ADD fails with PodUIDMismatch (100), as when the UID
// differs at the start, and rolls back: the delegates get DEL, the pod's
// namespace has only lo, no record or address is left, and the new pod has
// no network-status.
func TestAddRecreatedPodFails(t *testing.T) {
	const v = "1.0.0"
	e := newEnv(t)
	user, kubeconfig := statusWriter(t, e, "multus")
	e.nad("slow", e.recorderConf(v, "slow", map[string]any{"sleepMs": 3000}), nil)
	ann := map[string]string{"k8s.v1.cni.cncf.io/networks": "slow"}
	_, sb, netns := e.pod("web-0", ann)
	conf := e.multusConf(v, map[string]any{"kubeconfig": kubeconfig})

	start := time.Now()
	done := make(chan error, 1)
	go func() { _, err := e.rt.Add(e.ctx, conf, sb); done <- err }()
	for deadline := time.Now().Add(time.Minute); len(e.recordsFor("ADD")) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the slow delegate never ran\nlog:\n%s", e.log())
		}
	}
	recreate(t, e, "web-0", ann)
	err := <-done

	ce := cniError(t, err)
	if ce.Code != cnicode.PodUIDMismatch {
		t.Errorf("code %d, want %d: %s\nlog:\n%s", ce.Code, cnicode.PodUIDMismatch, ce.Msg, e.log())
	}
	for _, part := range []string{e.namespace + "/web-0", sb.Pod.UID, "recreated"} {
		if !strings.Contains(ce.Msg, part) {
			t.Errorf("error %q does not mention %q", ce.Msg, part)
		}
	}
	if codes := statusPatches(t, e, user, "web-0", start); len(codes) != 1 {
		t.Errorf("status patches %v, want one", codes)
	}
	if dels := e.recordsFor("DEL"); len(dels) != 1 {
		t.Errorf("%d delegate DELs, want the rollback's one", len(dels))
	}
	if got := links(t, netns); len(got) != 1 {
		t.Errorf("pod links after the failed ADD %v, want only lo", got)
	}
	if fileExists(e.recordFile(sb)) {
		t.Error("the attachment record survived the rollback")
	}
	if st := e.networkStatus("web-0"); len(st) != 0 {
		t.Errorf("the recreated pod has network-status %+v", st)
	}
	e.del(conf, sb)
}
