package testbed

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// containerdConfig is containerd 2.x's configuration: every path under the
// node's folder, the CRI settings this machine needs (real-node.md), the
// pinned pause image, and CNI from /opt/cni/bin and /etc/cni/net.d.
const containerdConfig = `version = 3
root = %[1]q
state = %[2]q

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins.'io.containerd.grpc.v1.cri']
  [plugins.'io.containerd.grpc.v1.cri'.registry]

[plugins.'io.containerd.cri.v1.images']
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %[5]q

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/opt/cni/bin']
    conf_dir = '/etc/cni/net.d'
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = %[6]q
        SystemdCgroup = false
        Root = %[7]q
`

func (n *KubeNode) startContainerd(ctx context.Context, images []string) error {
	dir := filepath.Join(n.Dir, "containerd")
	n.ContainerdSocket = filepath.Join(dir, "containerd.sock")
	runc, err := exec.LookPath("runc")
	if err != nil {
		return err
	}
	conf := fmt.Sprintf(containerdConfig, filepath.Join(dir, "root"), "/run/containerd", n.ContainerdSocket,
		filepath.Join(dir, "containerd.sock.ttrpc"), n.bed.PauseImageRef(), runc, "/run/runc")
	confPath := filepath.Join(n.Dir, "containerd.toml")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return err
	}
	n.launchContainerd = func() error {
		env := append(os.Environ(), "PATH="+n.bed.ContainerdDir()+":"+os.Getenv("PATH"))
		var err error
		n.Containerd, err = StartProcess("containerd", n.bed.Containerd(), []string{"--config", confPath}, env, filepath.Join(n.Dir, "containerd.log"))
		if err != nil {
			return err
		}
		if err := n.Containerd.waitFor(time.Minute, func() error { return n.ctr(ctx, "version") }); err != nil {
			return fmt.Errorf("containerd did not answer: %w\n%s", err, n.Containerd.Tail(20))
		}
		return nil
	}
	if err := n.launchContainerd(); err != nil {
		return err
	}
	for _, img := range append([]string{n.bed.PauseImage()}, images...) {
		if err := n.ctr(ctx, "-n", "k8s.io", "images", "import", "--no-unpack=false", img); err != nil {
			return fmt.Errorf("importing %s: %w", img, err)
		}
	}
	return nil
}

// ctr runs ctr against the node's containerd.
func (n *KubeNode) ctr(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, n.bed.Ctr(), append([]string{"--address", n.ContainerdSocket}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
address: %[6]s
port: %[1]d
readOnlyPort: 0
healthzPort: 0
tlsCertFile: %[2]q
tlsPrivateKeyFile: %[3]q
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[4]q
authorization:
  mode: Webhook
podLogsDir: /var/log/pods
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  imagefs.available: "1%%"
  nodefs.inodesFree: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
containerRuntimeEndpoint: %[5]q
registerNode: true
staticPodPath: ""
`

func (n *KubeNode) startKubelet(ctx context.Context) error {
	kc, err := n.userKubeconfig("kubelet", "system:node:"+KubeNodeName, "system:nodes")
	if err != nil {
		return err
	}
	serving, key, err := n.CP.pki.issue(pkix.Name{CommonName: "system:node:" + KubeNodeName, Organization: []string{"system:nodes"}},
		x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP(KubeNodeIP)}, []string{KubeNodeName})
	if err != nil {
		return err
	}
	certs := map[string][]byte{"kubelet.crt": serving, "kubelet.key": key}
	for name, data := range certs {
		if err := os.WriteFile(filepath.Join(n.Dir, name), data, 0o600); err != nil {
			return err
		}
	}
	port, _, err := freePorts(1)
	if err != nil {
		return err
	}
	conf := fmt.Sprintf(kubeletConfig, port, filepath.Join(n.Dir, "kubelet.crt"), filepath.Join(n.Dir, "kubelet.key"),
		filepath.Join(n.CP.Dir, "ca.crt"), "unix://"+n.ContainerdSocket, KubeNodeIP)
	confPath := filepath.Join(n.Dir, "kubelet.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return err
	}
	n.launchKubelet = func() error {
		var err error
		n.Kubelet, err = StartProcess("kubelet", n.bed.Kubelet(), []string{
			"--config=" + confPath, "--kubeconfig=" + kc, "--root-dir=/var/lib/kubelet",
			"--hostname-override=" + KubeNodeName, "--node-ip=" + KubeNodeIP, "--v=1",
		}, os.Environ(), filepath.Join(n.Dir, "kubelet.log"))
		return err
	}
	if err := n.launchKubelet(); err != nil {
		return err
	}
	kcs, err := kubernetes.NewForConfig(n.CP.AdminConfig())
	if err != nil {
		return err
	}
	return n.Kubelet.waitFor(2*time.Minute, func() error {
		_, err := kcs.CoreV1().Nodes().Get(ctx, KubeNodeName, metav1.GetOptions{})
		return err
	})
}

// removeContainers kills and removes every task and container in
// containerd's k8s.io namespace, so that no container outlives the node.
func (n *KubeNode) removeContainers() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids, err := n.containerIDs(ctx)
	if err != nil {
		return
	}
	for _, id := range ids {
		_ = n.ctr(ctx, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id)
		_ = n.ctr(ctx, "-n", "k8s.io", "tasks", "delete", "-f", id)
		_ = n.ctr(ctx, "-n", "k8s.io", "containers", "delete", id)
	}
	// What containerd could not end (a task whose shim is gone) is ended
	// through its cgroup, and the cgroups go.
	killContainers(ids)
}

// containerCgroups are the cgroup v1 folders containerd gives a container of
// the k8s.io namespace when the kubelet runs without QoS cgroups.
func containerCgroups(id string) []string {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*/k8s.io", id))
	return dirs
}

// killContainers SIGKILLs every process left in the containers' cgroups,
// waits until they are gone, and removes the cgroups.
func killContainers(ids []string) {
	for _, id := range ids {
		for _, dir := range containerCgroups(id) {
			for range 50 {
				procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
				pids := strings.Fields(string(procs))
				if len(pids) == 0 {
					break
				}
				for _, p := range pids {
					if pid, err := strconv.Atoi(p); err == nil {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			_ = os.Remove(dir)
		}
	}
}

// containerIDs lists the containers of containerd's k8s.io namespace.
func (n *KubeNode) containerIDs(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, n.bed.Ctr(), "--address", n.ContainerdSocket, "-n", "k8s.io", "containers", "ls", "-q").Output()
	return strings.Fields(string(out)), err
}

// killShims ends containerd-shim processes of this node that survived
// containerd (they daemonize), by their executable.
func (n *KubeNode) killShims() {
	shim := n.bed.ContainerdShim()
	exes, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, exe := range exes {
		if target, err := os.Readlink(exe); err == nil && target == shim {
			pid, _ := strconv.Atoi(strings.Split(exe, "/")[2])
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
		}
	}
}

// PIDsByArgs lists the processes whose command line is exactly args.
func PIDsByArgs(args ...string) []int {
	var pids []int
	want := strings.Join(args, "\x00") + "\x00"
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil || string(b) != want {
			continue
		}
		if pid, err := strconv.Atoi(strings.Split(d, "/")[2]); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
