package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
)

// hostStateDirs are the node's paths that a kubelet, containerd and CNI
// plugins use whatever they are told: each gets a private tmpfs, so nothing of
// the host's is read or written there.
var hostStateDirs = []string{
	"/run", "/var/lib/kubelet", "/var/log/pods", "/var/log/containers", "/var/lib/cni",
	"/etc/cni", "/opt/cni/bin",
}

// globalSysctls are what the kubelet sets outside any namespace.
var globalSysctls = []string{"vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"}

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
