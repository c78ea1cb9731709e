package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestMain(m *testing.M) { Main(m) }

// TestMainRunsTestsInANodeNamespace checks that Main moved this binary out of the
// host's network namespace.
func TestMainRunsTestsInANodeNamespace(t *testing.T) {
	Require(t)
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	// The parent is the launcher that Main left in the host namespace.
	host, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", os.Getppid()))
	if err != nil {
		t.Fatal(err)
	}
	if !InNode() || self == host {
		t.Fatalf("tests run in %s, the host's namespace is %s", self, host)
	}
}

// TestLeakCheckSeesEveryKindOfLeak leaves one of each kind of leak and checks that
// the comparison names it, then undoes them and checks it is clean again.
func TestLeakCheckSeesEveryKindOfLeak(t *testing.T) {
	Require(t)
	dir := t.TempDir()
	opts := LeakOptions{Dirs: []string{dir}}
	before := takeSnapshot(opts)

	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "leakprobe0"}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	defer netlink.LinkDel(br)
	if err := os.WriteFile(filepath.Join(dir, "10.1.2.3"), []byte("ctr"), 0o644); err != nil {
		t.Fatal(err)
	}
	// host-local's own bookkeeping is not a leak.
	if err := os.WriteFile(filepath.Join(dir, "last_reserved_ip.0"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := CreateNetNS()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Delete()
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()

	leaks := strings.Join(diffSnapshots(before, takeSnapshot(opts)), "\n")
	for _, want := range []string{
		"link in the node namespace: leakprobe0",
		"network namespace " + n.Name,
		"file in " + dir + ": 10.1.2.3",
		fmt.Sprintf("process %d (sleep)", sleeper.Process.Pid),
	} {
		if !strings.Contains(leaks, want) {
			t.Errorf("leak report lacks %q:\n%s", want, leaks)
		}
	}
	if strings.Contains(leaks, "last_reserved_ip") {
		t.Errorf("host-local bookkeeping reported as a leak:\n%s", leaks)
	}

	_ = netlink.LinkDel(br)
	_ = os.Remove(filepath.Join(dir, "10.1.2.3"))
	_ = n.Delete()
	_ = sleeper.Process.Kill()
	_ = sleeper.Wait()
	if leaks := diffSnapshots(before, takeSnapshot(opts)); len(leaks) > 0 {
		t.Errorf("leaks reported after undoing them: %v", leaks)
	}
}

// TestSweepStale deletes a namespace and a folder whose creator is gone, and keeps
// ours.
func TestSweepStale(t *testing.T) {
	Require(t)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	stale := &NetNS{Name: fmt.Sprintf("%s%d-1", netnsPrefix, gone.Process.Pid)}
	stale.Path = filepath.Join(netnsDir, stale.Name)
	if out, err := exec.Command("ip", "netns", "add", stale.Name).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	defer stale.Delete()
	live := NewNetNS(t)
	staleDir := filepath.Join(os.TempDir(), fmt.Sprintf("%scontrolplane-%d-123", tempDirPrefix, gone.Process.Pid))
	if err := os.MkdirAll(filepath.Join(staleDir, "etcd"), 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(staleDir)
	liveDir, err := makeTempDir("probe")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(liveDir)

	SweepStale()
	if _, err := os.Stat(staleDir); !os.IsNotExist(err) {
		t.Errorf("stale folder %s survived the sweep (%v)", staleDir, err)
	}
	if _, err := os.Stat(liveDir); err != nil {
		t.Errorf("live folder %s was swept: %v", liveDir, err)
	}
	names := listOurNetNS()
	if slices.Contains(names, stale.Name) {
		t.Errorf("stale namespace %s survived the sweep", stale.Name)
	}
	if !slices.Contains(names, live.Name) {
		t.Errorf("live namespace %s was swept", live.Name)
	}
}
