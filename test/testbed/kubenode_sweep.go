package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// nodeLockName is the lock a running KubeNode holds in the cache folder: one
// kubelet per machine is realistic (real-node.md), and whoever takes the lock
// knows that every container and shim of the k8s.io namespace left on the
// machine belongs to a node that was killed.
const nodeLockName = "kubenode.lock"

// nodeState records, beside the lock, what a node made on the host's file
// system, so that the next node removes it when this one was killed.
const nodeStateName = "kubenode.madedirs"

// lockNode takes the node lock without waiting; the file stays open (and
// locked) until the process ends or unlockNode.
func (n *KubeNode) lockNode() error {
	f, err := os.OpenFile(filepath.Join(n.bed.Cache, nodeLockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("another test node runs on this machine (%s is locked); stop it first (polynode down, or end its test)", f.Name())
	}
	n.lock = f
	return nil
}

func (n *KubeNode) unlockNode() {
	if n.lock != nil {
		os.Remove(filepath.Join(n.bed.Cache, nodeStateName))
		n.lock.Close()
		n.lock = nil
	}
}

// recordMadeDirs saves the mount points this node made, for sweepKilledNode.
func (n *KubeNode) recordMadeDirs() error {
	return os.WriteFile(filepath.Join(n.bed.Cache, nodeStateName), []byte(strings.Join(n.madeDirs, "\n")), 0o644)
}

// sweepKilledNode removes what a node that was killed (SIGKILL of its test,
// or of polynode's supervisor) could not: its containers' processes and
// cgroups, its shims, and the mount points it made on the host. Its
// kubelet, containerd and control plane died with it (Pdeathsig), and its
// mounts, links and firewall rules with its namespaces. It runs with the
// node lock held, so nothing found belongs to a live node.
func (n *KubeNode) sweepKilledNode() {
	n.killShims()
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/k8s.io/*")
	var ids []string
	for _, c := range cgroups {
		if st, err := os.Stat(c); err == nil && st.IsDir() {
			ids = append(ids, filepath.Base(c))
		}
	}
	killContainers(ids)
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/k8s.io")
	for _, p := range parents {
		_ = os.Remove(p)
	}
	data, err := os.ReadFile(filepath.Join(n.bed.Cache, nodeStateName))
	if err != nil {
		return
	}
	dirs := strings.Split(strings.TrimSpace(string(data)), "\n")
	for i := len(dirs) - 1; i >= 0; i-- {
		if dirs[i] != "" {
			_ = os.Remove(dirs[i]) // only an empty folder goes
		}
	}
	os.Remove(filepath.Join(n.bed.Cache, nodeStateName))
}
