package testbed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
)

// nodeEnv marks the child process that runs inside the node's network namespace.
const nodeEnv = "POLYNET_TEST_NODE"

// Main is the TestMain of every integration test package. As root, it re-executes
// the test binary in a new network namespace, the package's "node": the control
// plane listens on that namespace's loopback, and bridges, host-side veths, routes,
// sysctls and firewall rules made by delegates stay in it and vanish with it, so the
// host is never touched and concurrent test packages never see each other's ports.
// Before the tests it removes what an earlier, killed run left behind (SweepStale);
// after them it stops the shared control plane and removes the binaries it built.
//
// Not as root, it runs the tests as they are; each integration test then skips
// itself through Require.
func Main(m *testing.M) {
	os.Exit(runMain(m, syscall.CLONE_NEWNET))
}

// KubeNodeMain is Main for packages that run a real node (LaunchKubeNode): the
// test binary runs in a mount namespace of its own as well, where the node
// mounts private folders over the paths the kubelet and containerd use.
func KubeNodeMain(m *testing.M) {
	os.Exit(runMain(m, syscall.CLONE_NEWNET|syscall.CLONE_NEWNS))
}

func runMain(m *testing.M, cloneflags uintptr) int {
	if os.Geteuid() != 0 {
		return m.Run()
	}
	if os.Getenv(nodeEnv) == "" {
		code, err := reexecInNode(cloneflags)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testbed: %v\n", err)
			return 1
		}
		return code
	}
	if err := LoopbackUp(); err != nil {
		fmt.Fprintf(os.Stderr, "testbed: node namespace: %v\n", err)
		return 1
	}
	SweepStale()
	defer teardown()
	return m.Run()
}

// reexecInNode runs this test binary again, with the same arguments, in a new
// network namespace, and returns its exit code. The child dies with us
// (Pdeathsig), and SIGINT/SIGTERM are passed on so its cleanups run.
func reexecInNode(cloneflags uintptr) (int, error) {
	// Pdeathsig fires when the thread that started the child exits: keep it.
	runtime.LockOSThread()
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Env = append(os.Environ(), nodeEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: cloneflags, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting the tests in a node network namespace: %w", err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	signal.Stop(sigs)
	close(sigs)
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if status, ok := exitErr.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			return 128 + int(status.Signal()), nil
		}
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

// LoopbackUp sets the loopback link of this network namespace up.
func LoopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("finding lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("setting lo up: %w", err)
	}
	return nil
}

// InNode reports whether this process runs in a node namespace made by Main.
func InNode() bool { return os.Getenv(nodeEnv) != "" }
