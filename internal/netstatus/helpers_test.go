package netstatus

import (
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// testNetwork is the entry name used by the FromResult tests.
const testNetwork = "ns1/net-a"

// testSandbox is the netns path used for pod-side interfaces.
const testSandbox = "/var/run/netns/pod-1"

// cidr parses an address with prefix length the way CNI results carry it:
// the host address is kept, not masked away. It panics on a malformed
// literal, which can only be a mistake in a test table.
func cidr(s string) net.IPNet {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(fmt.Sprintf("bad test CIDR %q: %v", s, err))
	}
	n.IP = ip
	return *n
}

// ip parses a plain address, or returns nil for the empty string.
func ip(s string) net.IP {
	if s == "" {
		return nil
	}
	parsed := net.ParseIP(s)
	if parsed == nil {
		panic(fmt.Sprintf("bad test IP %q", s))
	}
	return parsed
}

// ipc builds a current IP configuration; idx nil means "no interface".
func ipc(addr, gw string, idx *int) *types100.IPConfig {
	return &types100.IPConfig{Interface: idx, Address: cidr(addr), Gateway: ip(gw)}
}

// route builds a route to dst via gw; an empty gw leaves the next hop unset.
func route(dst, gw string) *types.Route {
	return &types.Route{Dst: cidr(dst), GW: ip(gw)}
}

// podIf builds an interface inside the pod sandbox.
func podIf(name, mac string, mtu int) *types100.Interface {
	return &types100.Interface{Name: name, Mac: mac, Mtu: mtu, Sandbox: testSandbox}
}

// hostIf builds an interface in the host namespace (no sandbox).
func hostIf(name, mac string) *types100.Interface {
	return &types100.Interface{Name: name, Mac: mac}
}
