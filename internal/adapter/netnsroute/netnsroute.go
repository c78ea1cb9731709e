// Package netnsroute changes the default routes inside a pod's network namespace, for
// the default-route selection key (R-4.1.2.1.9). It works through the plugins' ns
// package, which pins the OS thread while inside the namespace, and netlink.
package netnsroute

import (
	"errors"
	"fmt"
	"net"
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

// DeleteDefault removes every default route of the family (4 or 6) on the
// interface and returns the gateways they had. Routes of the other family are left
// alone (upstream removes both: a QUIRK not copied).
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
		routes, err := netlink.RouteList(link, family(fam))
		if err != nil {
			return fmt.Errorf("listing routes of %s: %w", ifName, err)
		}
		for _, r := range routes {
			if !IsDefault(r.Dst) || r.Table != syscall.RT_TABLE_MAIN && r.Table != 0 {
				continue
			}
			if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("deleting default route via %v on %s: %w", r.Gw, ifName, err)
			}
			removed = append(removed, r.Gw)
		}
		return nil
	})
	return removed, err
}

// AddDefault adds a default route via gw on the interface.
func (Editor) AddDefault(netnsPath, ifName string, gw net.IP) error {
	return ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		link, err := netlink.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("interface %s: %w", ifName, err)
		}
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw, Scope: netlink.SCOPE_UNIVERSE, Family: family(familyOf(gw))}
		if err := netlink.RouteAdd(route); err != nil && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("adding default route via %s on %s: %w", gw, ifName, err)
		}
		return nil
	})
}
