package testbed

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// KubeNodeName is the name the real node registers under.
const KubeNodeName = "polynet-node"

// ServiceHost and ServicePort are the kubernetes Service's address that pods
// see in KUBERNETES_SERVICE_HOST/_PORT; the node sends them to the apiserver
// on loopback (what kube-proxy would do), so in-cluster clients work.
const (
	ServiceHost = "10.0.0.1"
	ServicePort = "443"
)

// KubeNodeIP is the node's InternalIP, on a link of the node's own network
// namespace (the kubelet refuses a loopback node IP).
const KubeNodeIP = "172.31.255.1"

// KubeNode is a one-node Kubernetes cluster: the control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler) and a node
// (containerd, runc, kubelet), all in the calling process's network and mount
// namespaces, which must be private (LaunchKubeNode makes its mounts there).
type KubeNode struct {
	Dir string
	CP  *ControlPlane
	// Kubeconfig is an administrator's kubeconfig file.
	Kubeconfig string
	// ContainerdSocket is the CRI and ctr endpoint.
	ContainerdSocket string

	ControllerManager, Scheduler, Containerd, Kubelet *Process

	bed                             Bed
	launchContainerd, launchKubelet func() error      // start the process again, as at boot
	lock                            *os.File          // the node lock (lockNode)
	mounts                          []string          // mounted by us, unmounted in reverse
	madeDirs                        []string          // mount points made on the host file system, removed after
	sysctls                         map[string]string // global sysctls the kubelet changes, restored after
}

// hostStateDirs are the node's paths that a kubelet, containerd and CNI
// plugins use whatever they are told: each gets a private tmpfs, so nothing of
// the host's is read or written there.
var hostStateDirs = []string{
	"/run", "/var/lib/kubelet", "/var/log/pods", "/var/log/containers", "/var/lib/cni",
	"/etc/cni", "/opt/cni/bin",
}

// globalSysctls are what the kubelet sets outside any namespace.
var globalSysctls = []string{"vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"}

// LaunchKubeNode starts the whole cluster with its files in dir and returns
// once the node has registered (it is NotReady until a CNI configuration
// exists: installing one is the caller's job). Images are imported into
// containerd's k8s.io namespace. The caller calls Stop, which also undoes
// the mounts and sysctls.
func LaunchKubeNode(ctx context.Context, b Bed, dir string, images ...string) (_ *KubeNode, err error) {
	n := &KubeNode{Dir: dir, bed: b, sysctls: map[string]string{}}
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	if err := n.lockNode(); err != nil {
		return nil, err
	}
	n.sweepKilledNode()
	if err := n.isolate(); err != nil {
		return nil, err
	}
	if err := n.recordMadeDirs(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "control-plane"), 0o755); err != nil {
		return nil, err
	}
	if n.CP, err = LaunchNodeControlPlane(ctx, b, filepath.Join(dir, "control-plane")); err != nil {
		return nil, err
	}
	n.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := WriteKubeconfig(n.Kubeconfig, n.CP.AdminConfig()); err != nil {
		return nil, err
	}
	if err := n.nodeAddress(); err != nil {
		return nil, err
	}
	if err := n.routeService(); err != nil {
		return nil, err
	}
	if err := n.startControllers(); err != nil {
		return nil, err
	}
	if err := n.startContainerd(ctx, images); err != nil {
		return nil, err
	}
	if err := n.startKubelet(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// isolate mounts a private tmpfs over each of hostStateDirs (making a missing
// mount point, which Stop removes), copies the reference plugins into
// /opt/cni/bin, and saves the global sysctls.
func (n *KubeNode) isolate() error {
	// Cut propagation from the host first, then share again inside this
	// namespace only: containers' HostToContainer mounts need / shared.
	if err := run("mount", "--make-rprivate", "/"); err != nil {
		return fmt.Errorf("the node needs a private mount namespace: %w", err)
	}
	if err := run("mount", "--make-rshared", "/"); err != nil {
		return err
	}
	for _, d := range hostStateDirs {
		if err := n.mkdirAll(d); err != nil {
			return err
		}
		if err := run("mount", "-t", "tmpfs", "-o", "mode=0755", "polynet-node", d); err != nil {
			return err
		}
		n.mounts = append(n.mounts, d)
	}
	for _, d := range []string{"/run/netns", "/etc/cni/net.d"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(n.bed.CNIPluginDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := copyFile(filepath.Join(n.bed.CNIPluginDir(), e.Name()), filepath.Join("/opt/cni/bin", e.Name())); err != nil {
			return err
		}
	}
	for _, s := range globalSysctls {
		v, err := os.ReadFile(filepath.Join("/proc/sys", s))
		if err != nil {
			return err
		}
		n.sysctls[s] = strings.TrimSpace(string(v))
	}
	return nil
}

// nodeAddress gives the node its InternalIP on a link of its own namespace.
func (n *KubeNode) nodeAddress() error {
	for _, args := range [][]string{
		{"link", "add", "polynode0", "type", "bridge"},
		{"addr", "add", KubeNodeIP + "/24", "dev", "polynode0"},
		{"link", "set", "polynode0", "up"},
		// The Service range needs a route before OUTPUT's DNAT sends it to
		// loopback (routeService).
		{"route", "add", "10.0.0.0/24", "dev", "polynode0"},
	} {
		if err := run("ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// mkdirAll makes d and its missing parents on the host's file system, and
// records each folder it made, so that Stop removes exactly those.
func (n *KubeNode) mkdirAll(d string) error {
	var missing []string
	for p := d; p != "/"; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		}
		missing = append([]string{p}, missing...)
	}
	for _, p := range missing {
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		n.madeDirs = append(n.madeDirs, p)
	}
	return nil
}

// routeService sends the kubernetes Service's address to the apiserver on
// loopback, in this network namespace only.
func (n *KubeNode) routeService() error {
	port := strings.TrimPrefix(n.CP.URL, "https://127.0.0.1:")
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/all/route_localnet", []byte("1"), 0o644); err != nil {
		return err
	}
	return run("iptables", "-t", "nat", "-A", "OUTPUT", "-d", ServiceHost, "-p", "tcp", "--dport", ServicePort,
		"-j", "DNAT", "--to-destination", "127.0.0.1:"+port)
}

// userKubeconfig writes a kubeconfig for a certificate of the control plane's
// CA with the given user and groups.
func (n *KubeNode) userKubeconfig(name, user string, groups ...string) (string, error) {
	cfg, err := n.CP.certConfig(user, groups...)
	if err != nil {
		return "", err
	}
	path := filepath.Join(n.Dir, name+".kubeconfig")
	return path, WriteKubeconfig(path, cfg)
}

func (n *KubeNode) startControllers() error {
	cmKC, err := n.userKubeconfig("controller-manager", "system:kube-controller-manager")
	if err != nil {
		return err
	}
	cpDir := n.CP.Dir
	n.ControllerManager, err = StartProcess("kube-controller-manager", n.bed.KubeControllerManager(), []string{
		"--kubeconfig=" + cmKC, "--authentication-kubeconfig=" + cmKC, "--authorization-kubeconfig=" + cmKC,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
		"--service-account-private-key-file=" + filepath.Join(cpDir, "sa.key"),
		"--root-ca-file=" + filepath.Join(cpDir, "ca.crt"),
		"--use-service-account-credentials=true",
	}, os.Environ(), filepath.Join(n.Dir, "kube-controller-manager.log"))
	if err != nil {
		return err
	}
	schedKC, err := n.userKubeconfig("scheduler", "system:kube-scheduler")
	if err != nil {
		return err
	}
	n.Scheduler, err = StartProcess("kube-scheduler", n.bed.KubeScheduler(), []string{
		"--kubeconfig=" + schedKC, "--authentication-kubeconfig=" + schedKC, "--authorization-kubeconfig=" + schedKC,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
	}, os.Environ(), filepath.Join(n.Dir, "kube-scheduler.log"))
	return err
}

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

// WaitReady waits until the node's Ready condition is True.
func (n *KubeNode) WaitReady(ctx context.Context, timeout time.Duration) error {
	kcs, err := kubernetes.NewForConfig(n.CP.AdminConfig())
	if err != nil {
		return err
	}
	return n.Kubelet.waitFor(timeout, func() error {
		node, err := kcs.CoreV1().Nodes().Get(ctx, KubeNodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("node %s: %s", c.Reason, c.Message)
			}
		}
		return errors.New("node has no Ready condition yet")
	})
}

// Reboot does to the node what a power cut and a boot do: every container,
// shim, containerd and the kubelet are killed (SIGKILL), /run (network
// namespaces, containerd's and runc's state, the daemon's socket) is lost,
// and containerd and the kubelet start again. What a disk keeps stays:
// /var/lib/kubelet, /var/lib/cni, /etc/cni, /opt/cni/bin and containerd's root.
func (n *KubeNode) Reboot(ctx context.Context) error {
	ids, _ := n.containerIDs(ctx)
	n.Kubelet.Kill()
	n.Containerd.Kill()
	n.killShims()
	killContainers(ids)
	unmountAll("/run")
	if err := run("mount", "-t", "tmpfs", "-o", "mode=0755", "polynet-node", "/run"); err != nil {
		return err
	}
	if err := os.MkdirAll("/run/netns", 0o755); err != nil {
		return err
	}
	if err := n.launchContainerd(); err != nil {
		return err
	}
	return n.launchKubelet()
}

// AdminConfig is the administrator's client configuration.
func (n *KubeNode) AdminConfig() *rest.Config { return n.CP.AdminConfig() }

// Stop ends every pod's containers, then the kubelet, containerd and the
// control plane, by PID, and undoes the mounts, the host mount points it made
// and the sysctls.
func (n *KubeNode) Stop() {
	if n.lock == nil {
		// Never started (another node holds the lock), or already stopped:
		// what is running belongs to someone else.
		return
	}
	if n.Kubelet != nil {
		n.Kubelet.Stop(15 * time.Second)
	}
	if n.Containerd != nil && n.ContainerdSocket != "" {
		n.removeContainers()
		n.Containerd.Stop(15 * time.Second)
	}
	n.killShims()
	// containerd's parent cgroups, when no other node's containers are in them.
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/k8s.io")
	for _, p := range parents {
		_ = os.Remove(p)
	}
	for _, p := range []*Process{n.Scheduler, n.ControllerManager} {
		if p != nil {
			p.Stop(10 * time.Second)
		}
	}
	if n.CP != nil {
		n.CP.Stop()
	}
	n.removeNetwork()
	for i := len(n.mounts) - 1; i >= 0; i-- {
		unmountAll(n.mounts[i])
	}
	n.mounts = nil
	for i := len(n.madeDirs) - 1; i >= 0; i-- {
		if err := os.Remove(n.madeDirs[i]); err != nil {
			fmt.Fprintf(os.Stderr, "testbed: node: removing the mount point %s it made: %v\n", n.madeDirs[i], err)
		}
	}
	n.madeDirs = nil
	for s, v := range n.sysctls {
		_ = os.WriteFile(filepath.Join("/proc/sys", s), []byte(v), 0o644)
	}
	n.unlockNode()
}

// removeNetwork undoes nodeAddress and routeService, and removes the links
// pods' networks made on the node, so that another node can start in the
// same network namespace.
func (n *KubeNode) removeNetwork() {
	if n.CP != nil {
		port := strings.TrimPrefix(n.CP.URL, "https://127.0.0.1:")
		_ = run("iptables", "-t", "nat", "-D", "OUTPUT", "-d", ServiceHost, "-p", "tcp", "--dport", ServicePort,
			"-j", "DNAT", "--to-destination", "127.0.0.1:"+port)
	}
	links, _ := netlink.LinkList()
	for _, l := range links {
		switch l.Type() {
		case "bridge", "veth", "macvlan":
			_ = netlink.LinkDel(l)
		}
	}
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

// unmountAll unmounts d until it is no mount point any more: the kubelet
// stacks a bind mount of its root folder on our tmpfs.
func unmountAll(d string) {
	for range 10 {
		if exec.Command("mountpoint", "-q", d).Run() != nil {
			return
		}
		if err := run("umount", "-R", d); err != nil {
			fmt.Fprintf(os.Stderr, "testbed: node: %v; detaching it lazily\n", err)
			_ = run("umount", "-R", "-l", d)
		}
	}
}

func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o755)
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
