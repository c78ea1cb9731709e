// Package netnsroute changes the default routes inside a pod's network namespace, for
// the default-route selection key (R-4.1.2.1.9). It works through the plugins' ns
// package, which pins the OS thread while inside the namespace, and netlink.
package netnsroute

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// family maps the engine's 4 and 6 to netlink's families.
func family(f int) int {
	if f == 4 {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// familyOf returns 4 or 6.
func familyOf(ip net.IP) int {
	if ip.To4() != nil {
		return 4
	}
	return 6
}

// IsDefault reports whether a route is a default route. netlink reports the
// default destination as 0.0.0.0/0 or ::/0 (older versions as nil): upstream
// looks only for nil and so never finds the route it means to delete.
func IsDefault(dst *net.IPNet) bool {
	if dst == nil {
		return true
	}
	ones, _ := dst.Mask.Size()
	return ones == 0 && dst.IP.IsUnspecified()
}

// Editor changes the routes of one pod namespace.
type Editor struct{}

// DeleteDefault removes every default route of the family (4 or 6) through the
// interface, in the main table, and returns the gateways they had. Routes of the
// other family are left alone (upstream removes both: a QUIRK not copied).
//
// A multipath default route loses only its nexthops through the interface.
// They are common: the reference plugins append their routes, and the kernel
// merges IPv6 default routes of equal metric into one multipath route, which
// names its interfaces only in its nexthops, so a listing filtered by
// interface does not see it.
func (Editor) DeleteDefault(netnsPath, ifName string, fam int) ([]net.IP, error) {
	var removed []net.IP
	err := ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		link, err := netlink.LinkByName(ifName)
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil // an attachment without a pod interface has no route to remove
		}
		if err != nil {
			return fmt.Errorf("interface %s: %w", ifName, err)
		}
		routes, err := mainDefaults(fam)
		if err != nil {
			return fmt.Errorf("listing routes: %w", err)
		}
		for _, r := range routes {
			gws, err := deleteThrough(r, link.Attrs().Index)
			if err != nil {
				return fmt.Errorf("deleting default route via %v on %s: %w", gws, ifName, err)
			}
			removed = append(removed, gws...)
		}
		return nil
	})
	return removed, err
}

// mainDefaults lists the default routes of the family in the main table.
func mainDefaults(fam int) ([]netlink.Route, error) {
	routes, err := netlink.RouteListFiltered(family(fam), &netlink.Route{Table: syscall.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(routes, func(r netlink.Route) bool { return !IsDefault(r.Dst) }), nil
}

// deleteThrough removes what of route r goes through the link with index idx
// and returns its gateways.
func deleteThrough(r netlink.Route, idx int) ([]net.IP, error) {
	if r.Dst == nil { // older kernels and netlink versions: netlink needs it spelt
		r.Dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
		if r.Family == netlink.FAMILY_V4 {
			r.Dst = &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		}
	}
	if len(r.MultiPath) == 0 {
		if r.LinkIndex != idx {
			return nil, nil
		}
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, syscall.ESRCH) {
			return []net.IP{r.Gw}, err
		}
		return []net.IP{r.Gw}, nil
	}
	var ours []net.IP
	var rest []*netlink.NexthopInfo
	for _, h := range r.MultiPath {
		if h.LinkIndex == idx {
			ours = append(ours, h.Gw)
		} else {
			rest = append(rest, h)
		}
	}
	switch {
	case len(ours) == 0:
		return nil, nil
	case len(rest) == 0:
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, syscall.ESRCH) {
			return ours, err
		}
	case r.Family == netlink.FAMILY_V6:
		// The kernel keeps IPv6 nexthops as sibling routes; naming the gateway
		// deletes that one alone.
		for _, gw := range ours {
			one := netlink.Route{Family: r.Family, Table: r.Table, Dst: r.Dst, Priority: r.Priority, LinkIndex: idx, Gw: gw}
			if err := netlink.RouteDel(&one); err != nil && !errors.Is(err, syscall.ESRCH) {
				return ours, err
			}
		}
	default:
		// An IPv4 multipath route is one route: it goes, and comes back with
		// the other nexthops. Appending keeps it clear of other default routes
		// of the same metric, which replacing could hit instead.
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, syscall.ESRCH) {
			return ours, err
		}
		r.MultiPath = rest
		if err := netlink.RouteAppend(&r); err != nil {
			return ours, fmt.Errorf("restoring the other nexthops %s: %w", hops(rest), err)
		}
	}
	return ours, nil
}

// hops describes nexthops for an error message.
func hops(hs []*netlink.NexthopInfo) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = fmt.Sprintf("via %s (link %d)", h.Gw, h.LinkIndex)
	}
	return strings.Join(parts, ", ")
}

// AddDefault adds a default route via gw on the interface. A default route
// that is there already is success; one of the same family through another
// gateway or interface is an error, not a silent success: the kernel refuses
// to add beside it, and the pod would be left without the route it asked for.
func (Editor) AddDefault(netnsPath, ifName string, gw net.IP) error {
	return ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		link, err := netlink.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("interface %s: %w", ifName, err)
		}
		fam := familyOf(gw)
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw, Scope: netlink.SCOPE_UNIVERSE, Family: family(fam)}
		err = netlink.RouteAdd(route)
		if errors.Is(err, syscall.EEXIST) {
			if there, lerr := hasDefault(fam, link.Attrs().Index, gw); lerr == nil && there {
				return nil
			}
			return fmt.Errorf("adding default route via %s on %s: another IPv%d default route is in the way: %w", gw, ifName, fam, err)
		}
		if err != nil {
			return fmt.Errorf("adding default route via %s on %s: %w", gw, ifName, err)
		}
		return nil
	})
}

// hasDefault reports whether the main table has a default route via gw on the
// link with index idx, alone or as a nexthop.
func hasDefault(fam, idx int, gw net.IP) (bool, error) {
	routes, err := mainDefaults(fam)
	if err != nil {
		return false, err
	}
	for _, r := range routes {
		if r.LinkIndex == idx && r.Gw.Equal(gw) {
			return true, nil
		}
		for _, h := range r.MultiPath {
			if h.LinkIndex == idx && h.Gw.Equal(gw) {
				return true, nil
			}
		}
	}
	return false, nil
}
