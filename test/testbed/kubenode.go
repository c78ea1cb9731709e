package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

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
