package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
)

// netnsDir is where `ip netns` keeps named namespaces.
const netnsDir = "/var/run/netns"

// netnsPrefix starts the name of every namespace the tests create; the creator's PID
// follows, so a later run can tell a namespace left by a killed run from one that a
// concurrent run still uses.
const netnsPrefix = "polynet-"

var netnsSeq atomic.Int64

// NetNS is a named network namespace made for one pod.
type NetNS struct {
	Name string
	// Path is what the runtime passes as CNI_NETNS.
	Path string
}

// NewNetNS creates a named network namespace with `ip netns add`, as a container
// runtime's sandbox, and deletes it when the test ends, even if the test fails.
func NewNetNS(tb testing.TB) *NetNS {
	tb.Helper()
	n, err := CreateNetNS()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := n.Delete(); err != nil {
			tb.Errorf("deleting netns: %v", err)
		}
	})
	return n
}

// CreateNetNS creates a named network namespace; the caller deletes it.
func CreateNetNS() (*NetNS, error) {
	name := fmt.Sprintf("%s%d-%d", netnsPrefix, os.Getpid(), netnsSeq.Add(1))
	if err := ipNetns("add", name); err != nil {
		return nil, err
	}
	return &NetNS{Name: name, Path: filepath.Join(netnsDir, name)}, nil
}

// Delete removes the namespace; a namespace already gone is not an error.
func (n *NetNS) Delete() error {
	if _, err := os.Stat(n.Path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return ipNetns("del", n.Name)
}

// ipNetns runs `ip netns <verb> <name>`, bounded by CallTimeout.
func ipNetns(verb, name string) error {
	ctx, cancel := callContext(context.Background())
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "netns", verb, name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns %s %s: %v: %s", verb, name, err, out)
	}
	return nil
}

// Do runs f with the calling goroutine's thread inside the namespace, through the
// plugins' ns package, which locks the thread and restores it afterwards.
func (n *NetNS) Do(f func() error) error {
	target, err := ns.GetNS(n.Path)
	if err != nil {
		return fmt.Errorf("opening netns %s: %w", n.Name, err)
	}
	defer target.Close()
	return target.Do(func(ns.NetNS) error { return f() })
}

// listOurNetNS returns the names of namespaces made by tests of this project.
func listOurNetNS() []string {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), netnsPrefix) {
			names = append(names, e.Name())
		}
	}
	return names
}
