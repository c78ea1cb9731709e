package nodee2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/polynet-cni/polynet/test/testbed"
)

// TestKilledNodeIsSwept kills a node's supervisor with SIGKILL while a pod
// runs on it, as a killed test or demo would leave it: the kubelet,
// containerd and the control plane die with it, but the pod's processes, its
// containerd shim, their cgroups and the mount points made on the host stay.
// The next node to start removes all of them before it starts.
func TestKilledNodeIsSwept(t *testing.T) {
	bed := testbed.Require(t)
	polynode := filepath.Join(t.TempDir(), "polynode")
	build := exec.Command("go", "build", "-o", polynode, "./test/polynode")
	build.Dir = bed.Root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building polynode: %v\n%s", err, out)
	}
	dir := t.TempDir()
	if out, err := exec.Command(polynode, "up", "-dir", dir, "-image", bed.ToolboxImage()).CombinedOutput(); err != nil {
		t.Fatalf("polynode up: %v\n%s", err, out)
	}
	pidText, err := os.ReadFile(filepath.Join(dir, "supervisor.pid"))
	if err != nil {
		t.Fatal(err)
	}
	supervisor, _ := strconv.Atoi(strings.TrimSpace(string(pidText)))
	t.Cleanup(func() { _ = exec.Command(polynode, "down", "-dir", dir).Run() })
	inNode := func(script string) string {
		out, err := exec.Command(polynode, "exec", "-dir", dir, "--", "sh", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("in the node: %s: %v\n%s", script, err, out)
		}
		return string(out)
	}
	inNode(`echo '` + strings.ReplaceAll(primary, "\n", "") + `' > /etc/cni/net.d/10-podnet.conflist`)
	kubectl := func(args ...string) error {
		return exec.Command(bed.Kubectl(), append([]string{"--kubeconfig", filepath.Join(dir, "kubeconfig")}, args...)...).Run()
	}
	deadline := time.Now().Add(3 * time.Minute)
	for kubectl("run", "sleeper", "--image="+bed.ToolboxImageRef(), "--image-pull-policy=Never", "--command", "--", "sleep", "3600") != nil {
		if time.Now().After(deadline) {
			t.Fatal("could not create a pod (no default ServiceAccount yet?)")
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := kubectl("wait", "pod", "sleeper", "--for=condition=Ready", "--timeout=3m"); err != nil {
		t.Fatalf("the pod never ran: %v", err)
	}
	if err := syscall.Kill(supervisor, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var left []int
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		left = testbed.PIDsByArgs("sleep", "3600")
		if syscall.Kill(supervisor, 0) != nil && len(left) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGKILL: supervisor alive %v, pod processes %v", syscall.Kill(supervisor, 0) == nil, left)
		}
	}
	t.Logf("left by the killed node: pod processes %v", left)

	startCluster(t, "thick") // sweeps, then runs a node of its own
	for _, pid := range left {
		if syscall.Kill(pid, 0) == nil {
			if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(st), ") Z ") {
				t.Errorf("the killed node's pod process %d still runs", pid)
			}
		}
	}
}
