package attach

import "strconv"

// nameInterfaces gives each attachment its pod interface: the cluster network gets
// the runtime's CNI_IFNAME; others the name their selection requests, or net<N>
// with N their position in the list, as upstream numbers them. A requested name
// that an earlier attachment uses fails (R-4.1.2.1.5). A generated name skips every
// name used or requested anywhere in the list, so it is unique for the sandbox
// and never makes a later, explicit request fail.
func nameInterfaces(clusterIfName string, planned []Planned) error {
	requested := map[string]bool{clusterIfName: true}
	for _, p := range planned {
		if p.Selection != nil && p.Selection.Interface != "" {
			requested[p.Selection.Interface] = true
		}
	}
	owner := map[string]string{}
	for i := range planned {
		p := &planned[i]
		switch {
		case i == 0:
			p.IfName = clusterIfName
		case p.Selection != nil && p.Selection.Interface != "":
			p.IfName = p.Selection.Interface
			if prev, used := owner[p.IfName]; used {
				return &InterfaceConflictError{Network: p.Network, IfName: p.IfName, Previous: prev}
			}
		default:
			p.IfName = generated(i, requested, owner)
		}
		owner[p.IfName] = p.Network
	}
	return nil
}

// generated returns the first free net<N> from N = pos on; the loop ends because
// only finitely many names are taken.
func generated(pos int, requested map[string]bool, used map[string]string) string {
	for n := pos; ; n++ {
		name := "net" + strconv.Itoa(n)
		if _, taken := used[name]; !taken && !requested[name] {
			return name
		}
	}
}
