package testbed

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// LeakOptions says what, besides the defaults, a leak check watches.
type LeakOptions struct {
	// Dirs are folders whose files must be the same at the end as at the start:
	// host-local's dataDir (one file per allocated address), our cniDir (attachment
	// records), libcni's cache folder. host-local's lock and last_reserved_ip files
	// are bookkeeping, not allocations, and are ignored.
	Dirs []string
	// NetNS are pod namespaces whose links must be the same at the end, if they still
	// exist then.
	NetNS []*NetNS
}

// hostDirs are the host's own CNI folders. The tests point every configuration
// at temporary folders; a file that appears here means one did not.
var hostDirs = []string{"/var/lib/cni", "/etc/cni", "/run/k8s.cni.cncf.io", "/var/run/k8s.cni.cncf.io", "/run/multus"}

// snapshot is what a leak check compares.
type snapshot struct {
	nodeLinks []string
	netns     []string
	files     map[string][]string
	podLinks  map[string][]string
	procs     map[int]string
}

// CheckLeaks records the state now and, when the test ends, after every cleanup the
// test registers later, fails the test if anything was left behind: links in the
// node namespace, pod namespaces made by this project's tests, files in opts.Dirs,
// links in opts.NetNS, and processes started by this test binary or running one of
// the plugin binaries (the reference plugins, ours). Call it first in a test.
func CheckLeaks(tb testing.TB, opts LeakOptions) {
	tb.Helper()
	before := takeSnapshot(opts)
	tb.Cleanup(func() {
		tb.Helper()
		var after snapshot
		// A process that was just signalled may take a moment to go away.
		for deadline := time.Now().Add(3 * time.Second); ; {
			after = takeSnapshot(opts)
			if len(newProcs(before, after)) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, leak := range diffSnapshots(before, after) {
			tb.Errorf("leak: %s", leak)
		}
	})
}

func takeSnapshot(opts LeakOptions) snapshot {
	s := snapshot{
		nodeLinks: linkNames(),
		netns:     netnsOfThisProcess(),
		files:     map[string][]string{},
		podLinks:  map[string][]string{},
		procs:     ourProcesses(),
	}
	for _, d := range append(slices.Clone(hostDirs), opts.Dirs...) {
		s.files[d] = listFiles(d)
	}
	for _, n := range opts.NetNS {
		var names []string
		if err := n.Do(func() error { names = linkNames(); return nil }); err == nil {
			s.podLinks[n.Name] = names
		}
	}
	return s
}

func diffSnapshots(before, after snapshot) []string {
	var leaks []string
	added := func(what string, b, a []string) {
		for _, x := range a {
			if !slices.Contains(b, x) {
				leaks = append(leaks, fmt.Sprintf("%s %s", what, x))
			}
		}
	}
	added("link in the node namespace:", before.nodeLinks, after.nodeLinks)
	added("network namespace", before.netns, after.netns)
	for dir, files := range after.files {
		added("file in "+dir+":", before.files[dir], files)
	}
	for name, links := range after.podLinks {
		if b, ok := before.podLinks[name]; ok {
			added("link in pod namespace "+name+":", b, links)
		}
	}
	for _, pid := range newProcs(before, after) {
		leaks = append(leaks, fmt.Sprintf("process %d (%s)", pid, after.procs[pid]))
	}
	return leaks
}

func newProcs(before, after snapshot) []int {
	var pids []int
	for pid := range after.procs {
		if _, ok := before.procs[pid]; !ok && !isTracked(pid) {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

func linkNames() []string {
	links, err := netlink.LinkList()
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}

// listFiles lists the files under dir, relative to it, without host-local's
// bookkeeping files.
func listFiles(dir string) []string {
	var files []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		base := d.Name()
		if base == "lock" || base == ".lock" || strings.HasPrefix(base, "last_reserved_ip") {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		files = append(files, rel)
		return nil
	})
	return files
}

// ourProcesses returns the live descendants of this process, and any process in our
// network namespace whose executable lies in the test bed's cache or in the folder
// of binaries the tests built (a plugin that forked a daemon is reparented away from
// us), by PID with its command name. The namespace test keeps out the plugins that
// other test packages, each a node of its own, run at the same time.
func ourProcesses() map[int]string {
	self := os.Getpid()
	parents := map[int]int{}
	names := map[int]string{}
	roots := []string{}
	if b, err := Load(); err == nil {
		roots = append(roots, b.Cache+string(filepath.Separator))
	}
	builtMu.Lock()
	if builtDir != "" {
		roots = append(roots, builtDir+string(filepath.Separator))
	}
	builtMu.Unlock()
	ourNet, _ := os.Readlink("/proc/self/ns/net")
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may contain spaces: parse after it.
		open, closing := strings.IndexByte(string(stat), '('), strings.LastIndexByte(string(stat), ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(string(stat[closing+1:]))
		if len(fields) < 2 || fields[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		parents[pid] = ppid
		names[pid] = string(stat[open+1 : closing])
		netNS, _ := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "net"))
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && netNS == ourNet {
			for _, r := range roots {
				if strings.HasPrefix(exe, r) {
					out[pid] = names[pid]
				}
			}
		}
	}
	for pid := range parents {
		for p, hops := parents[pid], 0; p > 1 && hops < 64; p, hops = parents[p], hops+1 {
			if p == self {
				out[pid] = names[pid]
				break
			}
		}
	}
	return out
}

// netnsOfThisProcess lists the pod namespaces this test binary made; other test
// packages, running at the same time, make their own.
func netnsOfThisProcess() []string {
	prefix := fmt.Sprintf("%s%d-", netnsPrefix, os.Getpid())
	var out []string
	for _, n := range listOurNetNS() {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}
