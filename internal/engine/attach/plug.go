package attach

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/selection"
)

// Change is what brings a running sandbox's attachments to its pod's networks
// annotation: the attachments to remove and the elements to add.
type Change struct {
	Remove []podnet.Attachment
	Add    []selection.Element
}

// Empty reports whether there is nothing to do.
func (c Change) Empty() bool { return len(c.Remove) == 0 && len(c.Add) == 0 }

// Diff compares a sandbox's attachments with the elements of its pod's
// networks annotation. Only attachments made for an element (Requested set)
// take part: the cluster network, default networks, the auxiliary chain and
// what /delegate plugged are never removed. An element that names its
// interface matches the attachment of its network with that interface; one
// that does not matches, in order, an attachment of its network made without a
// requested name. So a removed element takes exactly its interface with it and
// every other keeps its own. What the elements ask besides network and
// interface (addresses, MAC, cni-args) is not compared: an attachment is never
// re-made under a running pod for a changed detail.
func Diff(atts []podnet.Attachment, elems []selection.Element) Change {
	matched := make([]bool, len(atts))
	found := make([]bool, len(elems))
	match := func(named bool) {
		for j, el := range elems {
			if found[j] || (el.Interface != "") != named {
				continue
			}
			for i, a := range atts {
				r := a.Requested
				if matched[i] || r == nil || r.Network != el.Ref() || r.Interface != el.Interface {
					continue
				}
				if named && a.IfName != el.Interface {
					continue
				}
				matched[i], found[j] = true, true
				break
			}
		}
	}
	match(true)
	match(false)
	var c Change
	for i, a := range atts {
		if a.Requested != nil && !matched[i] {
			c.Remove = append(c.Remove, a)
		}
	}
	for j, el := range elems {
		if !found[j] {
			c.Add = append(c.Add, el)
		}
	}
	return c
}

// Plug resolves the elements to add to a running sandbox that has the
// attachments existing, as ADD resolves them (namespace isolation, the NAD,
// cni-args, capability arguments, a device, the device-info file, CNI_ARGS).
// in.Selections is the whole annotation, which maxNetworksPerPod bounds as in
// ADD. An element naming its interface gets it unless the sandbox already has
// it (*InterfaceConflictError); one that does not gets net<N>, N its position
// in the annotation as ADD counts it, or the next free one: a network removed
// and added again gets its old name back when it is still free. A device
// plugin's device goes only to one the sandbox does not use yet.
func Plug(ctx context.Context, in Input, existing []podnet.Attachment, add []selection.Element) ([]Planned, error) {
	if err := checkNetworkCount(in); err != nil {
		return nil, err
	}
	planned := make([]Planned, 0, len(add))
	for i := range add {
		p, err := selected(ctx, in, &add[i])
		if err != nil {
			return nil, err
		}
		planned = append(planned, p)
	}
	taken := map[string]bool{}
	for _, a := range existing {
		var id string
		if json.Unmarshal(a.CapabilityArgs["deviceID"], &id) == nil && id != "" {
			taken[id] = true
		}
	}
	return finish(ctx, in, planned, taken, func() error { return nameAdded(in, existing, planned) })
}

// nameAdded names the interfaces of networks added to a running sandbox. The
// names in use, the runtime's own and those the annotation requests are never
// generated.
func nameAdded(in Input, existing []podnet.Attachment, planned []Planned) error {
	owner := map[string]string{in.Req.IfName: "the cluster network"}
	for _, a := range existing {
		owner[a.IfName] = a.Network
	}
	requested := map[string]bool{}
	for _, el := range in.Selections {
		if el.Interface != "" {
			requested[el.Interface] = true
		}
	}
	for i := range planned {
		p := &planned[i]
		if name := p.Selection.Interface; name != "" {
			if prev, used := owner[name]; used {
				return &InterfaceConflictError{Network: p.Network, IfName: name, Previous: prev}
			}
			p.IfName = name
		} else {
			p.IfName = generated(position(in.Selections, p.Selection), requested, owner)
		}
		owner[p.IfName] = p.Network
	}
	return nil
}

// position is the number ADD would give the element's generated name: its
// place in the annotation, counting from 1 (the cluster network is 0).
func position(elems []selection.Element, el *selection.Element) int {
	for i := range elems {
		if elems[i].Ref() == el.Ref() && elems[i].Interface == el.Interface {
			return i + 1
		}
	}
	return len(elems) + 1
}

// String describes the change for logs.
func (c Change) String() string {
	return strconv.Itoa(len(c.Add)) + " to add, " + strconv.Itoa(len(c.Remove)) + " to remove"
}
