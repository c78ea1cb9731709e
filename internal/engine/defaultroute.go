package engine

import (
	"fmt"
	"net"
	"slices"

	"github.com/polynet-cni/polynet/internal/engine/attach"
	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// routeChange is what applyDefaultRoute did: which attachment took the default
// route, for which families, via which gateways. owner is -1 when nothing changed.
type routeChange struct {
	owner    int
	families []int
	gateways []net.IP
}

// applyDefaultRoute carries out the default-route selection key (R-4.1.2.1.9),
// which at most one element may set (the parser refuses more). For each family of
// the gateways given, every other attachment's default route of that family goes,
// the owner's own too, and the gateways become the pod's default routes on the
// owner's interface; a family not given is left alone, so an IPv4 gateway never
// costs the pod its IPv6 default route (upstream drops both, a QUIRK not copied).
// An empty list keeps the owner's own default routes and removes the others' of
// both families. libcni's cached results are rewritten to match, so CHECK and DEL
// see the routes the pod really has.
func (e *Engine) applyDefaultRoute(sb podnet.Sandbox, planned []attach.Planned) (routeChange, error) {
	ch := routeChange{owner: slices.IndexFunc(planned, func(p attach.Planned) bool {
		return p.Selection != nil && p.Selection.HasDefaultRoute
	})}
	if ch.owner < 0 {
		return ch, nil
	}
	if e.Routes == nil {
		return ch, fmt.Errorf("this engine cannot change routes")
	}
	ch.gateways = planned[ch.owner].Selection.DefaultRoute
	ch.families = familiesOf(ch.gateways)
	if len(ch.gateways) == 0 {
		ch.families = []int{4, 6}
	}
	// Every default route of the families goes first, the owner's gateways come
	// after: an owner listed before another attachment with a default route of
	// the same family would otherwise find that route in its way.
	for i, p := range planned {
		if i == ch.owner && len(ch.gateways) == 0 {
			continue
		}
		for _, f := range ch.families {
			if _, err := e.Routes.DeleteDefault(sb.NetNS, p.IfName, f); err != nil {
				return ch, fmt.Errorf("removing the IPv%d default route of %s: %w", f, p.IfName, err)
			}
		}
	}
	for _, gw := range ch.gateways {
		if err := e.Routes.AddDefault(sb.NetNS, planned[ch.owner].IfName, gw); err != nil {
			return ch, err
		}
	}
	for i, p := range planned {
		if i == ch.owner && len(ch.gateways) == 0 {
			continue
		}
		var add []net.IP
		if i == ch.owner {
			add = ch.gateways
		}
		if err := e.Delegates.RewriteDefaultRoutes(sb, p.Attachment, ch.families, add); err != nil {
			return ch, fmt.Errorf("updating the cached result of %s: %w", p.IfName, err)
		}
	}
	return ch, nil
}

// adjust makes attachment i's status entry tell the routes the pod has: gateways
// of removed default routes go; the owner reports the gateways it was given as
// "default-route" (R-5.3.6.4) and "gateway", or, with an empty list, its own.
func (ch routeChange) adjust(i int, entry netstatus.Entry) netstatus.Entry {
	if ch.owner < 0 {
		return entry
	}
	if i == ch.owner {
		if len(ch.gateways) == 0 {
			entry.DefaultRoute = slices.Clone(entry.Gateway)
			return entry
		}
		// The owner keeps its own gateways of the families it was not given.
		kept := slices.DeleteFunc(slices.Clone(entry.Gateway), func(gw string) bool {
			ip := net.ParseIP(gw)
			return ip == nil || slices.Contains(ch.families, familyOf(ip))
		})
		entry.DefaultRoute = nil
		for _, gw := range ch.gateways {
			entry.DefaultRoute = append(entry.DefaultRoute, gw.String())
		}
		entry.Gateway = append(slices.Clone(entry.DefaultRoute), kept...)
		return entry
	}
	entry.Gateway = slices.DeleteFunc(entry.Gateway, func(gw string) bool {
		ip := net.ParseIP(gw)
		return ip != nil && slices.Contains(ch.families, familyOf(ip))
	})
	if len(entry.Gateway) == 0 {
		entry.Gateway = nil
	}
	return entry
}

func familiesOf(ips []net.IP) []int {
	var fams []int
	for _, ip := range ips {
		if f := familyOf(ip); !slices.Contains(fams, f) {
			fams = append(fams, f)
		}
	}
	return fams
}

func familyOf(ip net.IP) int {
	if ip.To4() != nil {
		return 4
	}
	return 6
}
