package netnsroute

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
)

// TestIsDefault: both spellings of the default destination, and nil, are
// default; anything narrower, or not the unspecified address, is not.
func TestIsDefault(t *testing.T) {
	tests := []struct {
		dst  string
		want bool
	}{
		{"", true}, // nil
		{"0.0.0.0/0", true},
		{"::/0", true},
		{"0.0.0.0/1", false},
		{"10.0.0.0/8", false},
		{"::/1", false},
		{"fd00::/64", false},
		{"10.1.2.3/32", false},
	}
	for _, tt := range tests {
		t.Run(tt.dst, func(t *testing.T) {
			var dst *net.IPNet
			if tt.dst != "" {
				_, n, err := net.ParseCIDR(tt.dst)
				if err != nil {
					t.Fatal(err)
				}
				dst = n
			}
			if got := IsDefault(dst); got != tt.want {
				t.Errorf("IsDefault(%v) = %v, want %v", dst, got, tt.want)
			}
		})
	}
	// A non-zero address with a zero mask is not the default destination.
	if IsDefault(&net.IPNet{IP: net.ParseIP("10.0.0.1"), Mask: net.CIDRMask(0, 32)}) {
		t.Error("10.0.0.1/0 is reported default")
	}
}

// newNS makes a network namespace, unmounted when the test ends, pass or fail.
func newNS(t *testing.T) ns.NetNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	netns, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		netns.Close()
		if err := testutils.UnmountNS(netns); err != nil {
			t.Errorf("removing the namespace: %v", err)
		}
	})
	return netns
}

// addLink adds an up veth link with addresses inside netns, its peer (up,
// without addresses) beside it; this kernel has no dummy links. IPv6 addresses
// skip duplicate address detection, so that routes via them work at once.
func addLink(t *testing.T, netns ns.NetNS, name string, addrs ...string) {
	t.Helper()
	err := netns.Do(func(ns.NetNS) error {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		peer, err := netlink.LinkByName(name + "p")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(peer); err != nil {
			return err
		}
		link, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			addr, err := netlink.ParseAddr(a)
			if err != nil {
				return err
			}
			if addr.IP.To4() == nil {
				addr.Flags = syscall.IFA_F_NODAD
			}
			if err := netlink.AddrAdd(link, addr); err != nil {
				return fmt.Errorf("%s: %w", a, err)
			}
		}
		return netlink.LinkSetUp(link)
	})
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
}

// defaults lists the default routes of every table in netns as
// "<family> <link> via <gw> [table N]", sorted.
func defaults(t *testing.T, netns ns.NetNS) []string {
	t.Helper()
	var out []string
	err := netns.Do(func(ns.NetNS) error {
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: syscall.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if !IsDefault(r.Dst) {
				continue
			}
			hops := []*netlink.NexthopInfo{{LinkIndex: r.LinkIndex, Gw: r.Gw}}
			if len(r.MultiPath) > 0 {
				hops = r.MultiPath // one entry per nexthop: the kernel merges IPv6 routes
			}
			for _, h := range hops {
				link, err := netlink.LinkByIndex(h.LinkIndex)
				if err != nil {
					return err
				}
				s := fmt.Sprintf("%d %s via %s", familyOf(h.Gw), link.Attrs().Name, h.Gw)
				if r.Table != syscall.RT_TABLE_MAIN {
					s += fmt.Sprintf(" table %d", r.Table)
				}
				out = append(out, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// addInTable adds a default route via gw on link in a table other than main.
func addInTable(t *testing.T, netns ns.NetNS, link string, gw string, table int) {
	t.Helper()
	err := netns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(link)
		if err != nil {
			return err
		}
		ip := net.ParseIP(gw)
		return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: ip, Table: table, Family: family(familyOf(ip))})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// addAsPlugin adds a default route via gw on link the way the reference
// plugins' ipam.ConfigureIface does, appending (netlink.RouteAddEcmp): the
// kernel merges IPv6 ones of equal metric into one multipath route.
func addAsPlugin(link, gw string) func(ns.NetNS) error {
	return func(ns.NetNS) error {
		l, err := netlink.LinkByName(link)
		if err != nil {
			return err
		}
		ip := net.ParseIP(gw)
		_, dst, _ := net.ParseCIDR("0.0.0.0/0")
		if familyOf(ip) == 6 {
			_, dst, _ = net.ParseCIDR("::/0")
		}
		return netlink.RouteAddEcmp(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Gw: ip})
	}
}

func ips(s ...string) []net.IP {
	var out []net.IP
	for _, a := range s {
		out = append(out, net.ParseIP(a))
	}
	return out
}

// addMultipath adds one IPv4 default route with a nexthop via each of
// link=gw, as `ip route add default nexthop ... nexthop ...` does.
func addMultipath(hops ...[2]string) func(ns.NetNS) error {
	return func(ns.NetNS) error {
		_, dst, _ := net.ParseCIDR("0.0.0.0/0")
		r := &netlink.Route{Family: netlink.FAMILY_V4, Dst: dst}
		for _, h := range hops {
			l, err := netlink.LinkByName(h[0])
			if err != nil {
				return err
			}
			r.MultiPath = append(r.MultiPath, &netlink.NexthopInfo{LinkIndex: l.Attrs().Index, Gw: net.ParseIP(h[1])})
		}
		return netlink.RouteAdd(r)
	}
}

// TestEditor: in a real namespace, steps of adding and deleting default routes
// of both families on two interfaces, some added the way the reference plugins
// add them. Deleting touches only the family and interface asked for and the
// main table, nexthops of a multipath route included, and returns the gateways
// removed; adding what is there already and deleting what is not are not
// errors; adding while another default route of the family is in the way is.
func TestEditor(t *testing.T) {
	netns := newNS(t)
	addLink(t, netns, "net1", "10.9.8.2/24", "fd00:9::2/64")
	addLink(t, netns, "net2", "10.7.6.2/24", "fd00:7::2/64")
	addInTable(t, netns, "net1", "10.9.8.254", 100)
	var e Editor
	path := netns.Path()
	add := func(link, gw string) func() ([]net.IP, error) {
		return func() ([]net.IP, error) { return nil, e.AddDefault(path, link, net.ParseIP(gw)) }
	}
	del := func(link string, fam int) func() ([]net.IP, error) {
		return func() ([]net.IP, error) { return e.DeleteDefault(path, link, fam) }
	}
	other := func(f ...func(ns.NetNS) error) func() ([]net.IP, error) {
		return func() ([]net.IP, error) {
			for _, f := range f {
				if err := netns.Do(f); err != nil {
					return nil, err
				}
			}
			return nil, nil
		}
	}
	const (
		table = "4 net1 via 10.9.8.254 table 100" // never touched
		v4n1  = "4 net1 via 10.9.8.1"
		v4n2  = "4 net2 via 10.7.6.1"
		v6n1  = "6 net1 via fd00:9::1"
		v6n2  = "6 net2 via fd00:7::1"
	)
	steps := []struct {
		name        string
		do          func() ([]net.IP, error)
		wantErr     bool
		wantRemoved []net.IP
		want        []string
	}{
		{"add v4", add("net1", "10.9.8.1"), false, nil, []string{v4n1, table}},
		{"add v4 again", add("net1", "10.9.8.1"), false, nil, []string{v4n1, table}},
		{"add v6", add("net1", "fd00:9::1"), false, nil, []string{v4n1, table, v6n1}},
		{"add v6 on net2 with net1's in the way", add("net2", "fd00:7::1"), true, nil, []string{v4n1, table, v6n1}},
		{"add v4 on net2 with net1's in the way", add("net2", "10.7.6.1"), true, nil, []string{v4n1, table, v6n1}},
		{"delete v4 on net1", del("net1", 4), false, ips("10.9.8.1"), []string{table, v6n1}},
		{"delete v4 on net1 again", del("net1", 4), false, nil, []string{table, v6n1}},
		{"plugins add v6 on net2, v4 on both", other(addAsPlugin("net2", "fd00:7::1"), addAsPlugin("net1", "10.9.8.1"), addAsPlugin("net2", "10.7.6.1")),
			false, nil, []string{v4n1, v4n2, table, v6n1, v6n2}},
		{"delete merged v6 on net1", del("net1", 6), false, ips("fd00:9::1"), []string{v4n1, v4n2, table, v6n2}},
		{"delete appended v4 on net2", del("net2", 4), false, ips("10.7.6.1"), []string{v4n1, table, v6n2}},
		{"delete on a missing interface", del("eth9", 6), false, nil, []string{v4n1, table, v6n2}},
		{"delete v6 on net2", del("net2", 6), false, ips("fd00:7::1"), []string{v4n1, table}},
		{"delete v4 on net1", del("net1", 4), false, ips("10.9.8.1"), []string{table}},
		{"multipath v4 on both", other(addMultipath([2]string{"net1", "10.9.8.1"}, [2]string{"net2", "10.7.6.1"})),
			false, nil, []string{v4n1, v4n2, table}},
		{"delete multipath v4 on net1", del("net1", 4), false, ips("10.9.8.1"), []string{v4n2, table}},
		{"delete multipath v4 on net2", del("net2", 4), false, ips("10.7.6.1"), []string{table}},
		{"add v4 on net2 once the way is clear", add("net2", "10.7.6.1"), false, nil, []string{v4n2, table}},
	}
	for _, s := range steps {
		removed, err := s.do()
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: error %v, want error %v", s.name, err, s.wantErr)
		}
		if diff := cmp.Diff(s.wantRemoved, removed); diff != "" {
			t.Errorf("%s: gateways removed (-want +got):\n%s", s.name, diff)
		}
		if diff := cmp.Diff(slices.Sorted(slices.Values(s.want)), defaults(t, netns)); diff != "" {
			t.Fatalf("%s: default routes (-want +got):\n%s", s.name, diff)
		}
	}
}

// TestEditorErrors: adding on an interface the pod lacks, or via a gateway it
// cannot reach, fails naming the interface; a namespace that is gone is an
// ns.NSPathNotExistErr, so DEL can treat it as done.
func TestEditorErrors(t *testing.T) {
	netns := newNS(t)
	addLink(t, netns, "net1", "10.9.8.2/24")
	var e Editor
	if err := e.AddDefault(netns.Path(), "eth9", net.ParseIP("10.9.8.1")); err == nil {
		t.Error("adding on a missing interface succeeded")
	}
	if err := e.AddDefault(netns.Path(), "net1", net.ParseIP("192.0.2.1")); err == nil {
		t.Error("adding via an unreachable gateway succeeded")
	}
	if got := defaults(t, netns); len(got) != 0 {
		t.Errorf("failed adds left routes: %v", got)
	}
	gone := filepath.Join(t.TempDir(), "gone")
	_, delErr := e.DeleteDefault(gone, "net1", 4)
	addErr := e.AddDefault(gone, "net1", net.ParseIP("10.9.8.1"))
	for name, err := range map[string]error{"DeleteDefault": delErr, "AddDefault": addErr} {
		var missing ns.NSPathNotExistErr
		if !errors.As(err, &missing) {
			t.Errorf("%s in a missing namespace: %v (%T), want ns.NSPathNotExistErr", name, err, err)
		}
	}
}
