package nodee2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/polynet-cni/polynet/test/testbed"
)

const upgradeVersion = "v0.0.0-upgrade"

// TestRollingUpgrade updates the thick DaemonSet from one image tag to
// another, whose binaries differ, while pods are created and deleted in a
// loop: the new shim replaces the running one on the host without "text file
// busy", every pod of the loop comes up Running with its network, and
// nothing is leaked. Failed sandbox attempts while the daemon restarts (the
// shim answers "try again later") are counted and reported.
func TestRollingUpgrade(t *testing.T) {
	next := upgradeImage(t)
	c := startClusterWith(t, "thick", next)
	c.nads()

	var (
		mu       sync.Mutex
		done     []string
		failures []string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// No t.Fatal in this goroutine: every failure is collected.
			name := fmt.Sprintf("loop-%02d", i)
			err := c.podCycle(name)
			mu.Lock()
			if err != nil {
				failures = append(failures, fmt.Sprintf("%s: %v", name, err))
			} else {
				done = append(done, name)
			}
			mu.Unlock()
		}
	}()
	c.eventually(time.Minute, "the loop to get going", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(done)+len(failures) < 2 {
			return fmt.Errorf("%d pods through the loop", len(done)+len(failures))
		}
		return nil
	})
	c.kubectl("-n", "kube-system", "set", "image", "ds/kube-multus-ds", "*=ghcr.io/polynet-cni/polynet:"+upgradeVersion)
	c.kubectl("-n", "kube-system", "rollout", "status", "ds/kube-multus-ds", "--timeout=4m")
	mu.Lock()
	before := len(done) + len(failures)
	mu.Unlock()
	c.eventually(3*time.Minute, "two more pods through the loop after the rollout", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(done)+len(failures) < before+2 {
			return fmt.Errorf("%d pods through the loop", len(done)+len(failures))
		}
		return nil
	})
	close(stop)
	wg.Wait()

	if len(failures) > 0 {
		t.Errorf("pods that never ran during the upgrade: %v", failures)
	}
	out, err := exec.Command("/opt/cni/bin/multus-shim", "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), upgradeVersion) {
		t.Errorf("the shim on the node after the upgrade: %q (%v), want %s", out, err, upgradeVersion)
	}
	events, err := c.kc.CoreV1().Events("").List(c.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	retried := 0
	for _, ev := range events.Items {
		if strings.Contains(strings.ToLower(ev.Message), "text file busy") {
			t.Errorf("event %s/%s: %s", ev.InvolvedObject.Name, ev.Reason, ev.Message)
		}
		if ev.Reason == "FailedCreatePodSandBox" {
			retried += int(ev.Count)
		}
	}
	t.Logf("%d pods through the loop during the upgrade; %d sandbox attempts answered \"try again later\" and were retried by the kubelet", len(done), retried)
	c.eventually(3*time.Minute, "nothing left on the node", func() error {
		if l := leftovers(); len(l) > 0 {
			return fmt.Errorf("left: %v", l)
		}
		return nil
	})
}

// upgradeImage builds our image again from binaries that carry another
// version, tagged upgradeVersion only.
func upgradeImage(t *testing.T) string {
	t.Helper()
	bed := testbed.Require(t)
	bins := t.TempDir()
	pkgs := []string{"./cmd/multus", "./cmd/multus-shim", "./cmd/multus-daemon", "./cmd/passthru", "./cmd/install_multus", "./cmd/thin_entrypoint", "./cmd/multus-cert-approver"}
	cmd := exec.Command("go", append([]string{"build", "-trimpath", "-ldflags",
		"-X github.com/polynet-cni/polynet/internal/buildinfo.Version=" + upgradeVersion, "-o", bins + "/"}, pkgs...)...)
	cmd.Dir, cmd.Env = bed.Root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the upgrade's binaries: %v\n%s", err, out)
	}
	out := t.TempDir()
	cmd = exec.Command("go", "run", "./tools/mkimage", "-bin", bins, "-out", out, "-version", upgradeVersion,
		"-revision", "upgrade", "-epoch", "0", "-tags", "")
	cmd.Dir = bed.Root
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the upgrade's image: %v\n%s", err, msg)
	}
	return filepath.Join(out, "polynet-"+upgradeVersion+".tar")
}

// podCycle creates a pod on the blue network, waits until it runs, deletes
// it and waits until it is gone, returning what went wrong.
func (c *cluster) podCycle(name string) error {
	zero := int64(0)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": "blue"}},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &zero, Containers: []corev1.Container{{
			Name: "toolbox", Image: c.bed.ToolboxImageRef(), ImagePullPolicy: corev1.PullNever, Command: []string{"sleep", "3600"}}}},
	}
	if _, err := c.kc.CoreV1().Pods("default").Create(c.ctx, pod, metav1.CreateOptions{}); err != nil {
		return err
	}
	runErr := c.waitRunningErr(3*time.Minute, name)
	if err := c.kc.CoreV1().Pods("default").Delete(c.ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		return err
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(250 * time.Millisecond) {
		if _, err := c.kc.CoreV1().Pods("default").Get(c.ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not deleted within 2 minutes (run: %v)", runErr)
		}
	}
	return runErr
}

// waitRunningErr is waitRunning that returns the failure instead.
func (c *cluster) waitRunningErr(timeout time.Duration, name string) error {
	var last error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		p, err := c.kc.CoreV1().Pods("default").Get(c.ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err
			continue
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
		last = fmt.Errorf("phase %s", p.Status.Phase)
	}
	return last
}
