// Package testbed gives the project's tests the real components they meet in
// production: a kube-apiserver and etcd on loopback, network namespaces for pods, the
// reference CNI plugins, our own binaries, a recording delegate plugin, a way to invoke
// a CNI plugin exactly as a container runtime does, and leak checks.
//
// hack/testbed.sh installs the external parts into a cache folder keyed by the
// versions in hack/versions.env; this package reads the same file to find them.
// Integration tests need root; Main runs each test binary as its own "node", a private
// network namespace, so bridges, routes and firewall rules never touch the host.
package testbed

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// How long the bed waits. Developers' machines and CI's are busy with other work
// while the suite runs (at a load average of 30 on 2 cores, building the daemon
// from a cold cache took 29 minutes), so every wait polls for its condition and
// gives up only after a bound far above what an idle machine needs: a wait that
// succeeds returns as soon as its condition holds, and only a real hang pays the
// bound.
const (
	// CallTimeout bounds one call the bed makes for a test: an API request, a CNI
	// invocation. Each call gets its own, so a test's late calls are never starved
	// by its early ones.
	CallTimeout = 2 * time.Minute
	// StartTimeout bounds the start of one process until it answers its health
	// check (etcd, kube-apiserver, the daemon).
	StartTimeout = 5 * time.Minute
	// pollInterval is how often a wait checks its condition.
	pollInterval = 100 * time.Millisecond
	// deadlineMargin is how long before the test binary's -timeout a test's context
	// ends, so a hung call fails its test, and the cleanups print the logs, before
	// go test kills the binary.
	deadlineMargin = time.Minute
)

// Context returns the context of one test's calls: it ends when the test ends, and a
// little before the test binary's -timeout, never earlier. It is not a budget for
// the test: a deadline that starts ticking when a test starts is spent by whatever
// runs first on a busy machine (building a binary, starting the daemon) and then
// fails a later, quick call. The bed's helpers bound each call by CallTimeout.
func Context(tb testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	if t, ok := tb.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := t.Deadline(); ok {
			var cancelDeadline context.CancelFunc
			ctx, cancelDeadline = context.WithDeadline(ctx, deadline.Add(-deadlineMargin))
			tb.Cleanup(cancelDeadline)
		}
	}
	return ctx
}

// callContext bounds one call by CallTimeout, within ctx.
func callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, CallTimeout)
}

// Bed locates the installed test bed.
type Bed struct {
	// Root is the module root of this repository.
	Root string
	// Cache is the folder hack/testbed.sh installs into.
	Cache string
	// Versions are the pinned versions from hack/versions.env.
	Versions map[string]string
}

var (
	bedOnce sync.Once
	bed     Bed
	bedErr  error
)

// Load finds the module root and the cache folder. It does not check that anything
// is installed: see Require.
func Load() (Bed, error) {
	bedOnce.Do(func() { bed, bedErr = load() })
	return bed, bedErr
}

func load() (Bed, error) {
	root, err := moduleRoot()
	if err != nil {
		return Bed{}, err
	}
	versions, err := readEnvFile(filepath.Join(root, "hack", "versions.env"))
	if err != nil {
		return Bed{}, err
	}
	cache := os.Getenv("POLYNET_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return Bed{}, fmt.Errorf("finding the cache folder: %w", err)
			}
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "polynet")
	}
	return Bed{Root: root, Cache: cache, Versions: versions}, nil
}

// CNIPluginDir is the folder of the reference CNI plugins.
func (b Bed) CNIPluginDir() string {
	return filepath.Join(b.Cache, "cni-plugins-"+b.Versions["CNI_PLUGINS_VERSION"])
}

// KubeAPIServer is the path of the kube-apiserver binary.
func (b Bed) KubeAPIServer() string {
	return filepath.Join(b.Cache, "kube-apiserver-"+b.Versions["KUBERNETES_VERSION"], "kube-apiserver")
}

// Helm is the path of the helm binary.
func (b Bed) Helm() string {
	return filepath.Join(b.Cache, "helm-"+b.Versions["HELM_VERSION"], "helm")
}

// Etcd is the path of the etcd binary.
func (b Bed) Etcd() string {
	return filepath.Join(b.Cache, "etcd-"+b.Versions["ETCD_VERSION"], "etcd")
}

// KubeControllerManager is the path of the kube-controller-manager binary (hack/testbed.sh node).
func (b Bed) KubeControllerManager() string { return b.kubeBinary("kube-controller-manager") }

// KubeScheduler is the path of the kube-scheduler binary (hack/testbed.sh node).
func (b Bed) KubeScheduler() string { return b.kubeBinary("kube-scheduler") }

// Kubelet is the path of the kubelet binary (hack/testbed.sh node).
func (b Bed) Kubelet() string { return b.kubeBinary("kubelet") }

// Kubectl is the path of the kubectl binary (hack/testbed.sh node).
func (b Bed) Kubectl() string { return b.kubeBinary("kubectl") }

func (b Bed) kubeBinary(name string) string {
	return filepath.Join(b.Cache, name+"-"+b.Versions["KUBERNETES_VERSION"], name)
}

// ContainerdDir is the folder of containerd, containerd-shim-runc-v2 and ctr
// (hack/testbed.sh node). containerd finds its shim on PATH: put this folder there.
func (b Bed) ContainerdDir() string {
	return filepath.Join(b.Cache, "containerd-"+b.Versions["CONTAINERD_VERSION"])
}

// Containerd is the path of the containerd binary.
func (b Bed) Containerd() string { return filepath.Join(b.ContainerdDir(), "containerd") }

// ContainerdShim is the path of containerd's runc shim, containerd-shim-runc-v2.
func (b Bed) ContainerdShim() string {
	return filepath.Join(b.ContainerdDir(), "containerd-shim-runc-v2")
}

// Ctr is the path of containerd's client, ctr.
func (b Bed) Ctr() string { return filepath.Join(b.ContainerdDir(), "ctr") }

// Runc is the path of Debian's runc, which hack/testbed.sh node installs.
func (b Bed) Runc() string { return "/usr/sbin/runc" }

// NodeImagesDir is the folder of the image archives a node runs without a registry
// (hack/testbed.sh node, tools/nodeimages).
func (b Bed) NodeImagesDir() string {
	return filepath.Join(b.Cache, "node-images-"+b.Versions["NODE_IMAGES_VERSION"])
}

// PauseImage is the path of the pause image's OCI archive, for `ctr images import`.
func (b Bed) PauseImage() string { return filepath.Join(b.NodeImagesDir(), "pause.tar") }

// PauseImageRef is the reference of the pause image, such as polynet.test/pause:3.10.
func (b Bed) PauseImageRef() string { return b.Versions["PAUSE_IMAGE"] }

// ToolboxImage is the path of the toolbox image's OCI archive (busybox with a link
// for every applet), for test pods.
func (b Bed) ToolboxImage() string { return filepath.Join(b.NodeImagesDir(), "toolbox.tar") }

// ToolboxImageRef is the reference of the toolbox image, such as polynet.test/toolbox:1.
func (b Bed) ToolboxImageRef() string { return b.Versions["TOOLBOX_IMAGE"] }

// Require skips the test when it cannot run here (not root) and fails it when the
// test bed is missing, naming the command that installs it. A missing bed is a
// failure, not a skip, so that a broken setup can never pass silently.
func Require(tb testing.TB) Bed {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: network namespaces, links and the control plane run as root (make test)")
	}
	b, err := Load()
	if err != nil {
		tb.Fatalf("test bed: %v", err)
	}
	for _, p := range []string{b.KubeAPIServer(), b.Etcd(), filepath.Join(b.CNIPluginDir(), "bridge")} {
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("test bed not installed (%v): run `make testbed` or `hack/testbed.sh`", err)
		}
	}
	return b
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "versions.env")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no hack/versions.env above the working directory")
		}
		dir = parent
	}
}

// readEnvFile reads KEY=VALUE lines, skipping blanks and # comments.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s: line %q is not KEY=VALUE", path, line)
		}
		out[k] = v
	}
	return out, sc.Err()
}
