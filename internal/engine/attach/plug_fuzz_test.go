package attach

import (
	"strings"
	"testing"

	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/selection"
)

// FuzzDiff compares any recorded attachments with any networks annotation.
// Properties: an attachment the annotation did not ask for (no Requested) is
// never removed; every Requested attachment is either kept (matched by exactly
// one element) or removed; every element is either matched or added; so the
// counts add up, and a second Diff of the result (kept + added as their
// elements would be recorded) is empty.
func FuzzDiff(f *testing.F) {
	f.Add("a:net1:;b:net2:;c:blue:blue", "a,b")
	f.Add("a:net1:;a:net3:", `[{"name":"a"},{"name":"a","interface":"net3"}]`)
	f.Add(":eth0:;x:net1:", "x,other/x")
	f.Add("", `[{"name":"a","interface":"foo"},{"name":"a","interface":"foo"}]`)
	f.Fuzz(func(t *testing.T, recorded, annotation string) {
		elems, err := selection.Parse(annotation, "ns1")
		if err != nil {
			return
		}
		var atts []podnet.Attachment
		for _, item := range strings.Split(recorded, ";") {
			parts := strings.SplitN(item, ":", 3)
			if len(parts) != 3 || parts[1] == "" {
				continue
			}
			a := podnet.Attachment{Network: "ns1/" + parts[0], IfName: parts[1]}
			if parts[0] != "" {
				a.Requested = &podnet.Requested{Network: "ns1/" + parts[0], Interface: parts[2]}
			}
			atts = append(atts, a)
		}
		c := Diff(atts, elems)
		requested := 0
		for _, a := range atts {
			if a.Requested != nil {
				requested++
			}
		}
		for _, r := range c.Remove {
			if r.Requested == nil {
				t.Fatalf("removed %+v, which the annotation never asked for", r)
			}
		}
		kept := requested - len(c.Remove)
		if kept+len(c.Add) != len(elems) {
			t.Fatalf("%d kept + %d added != %d elements (attachments %+v, elements %+v)", kept, len(c.Add), len(elems), atts, elems)
		}
		// Apply the change as a reconciliation records it, and compare again.
		var after []podnet.Attachment
		for _, a := range atts {
			removed := false
			for _, r := range c.Remove {
				if r.IfName == a.IfName && r.Network == a.Network && r.Requested == a.Requested {
					removed = true
				}
			}
			if !removed {
				after = append(after, a)
			}
		}
		for i, el := range c.Add {
			name := el.Interface
			if name == "" {
				name = "gen" + strings.Repeat("x", i)
			}
			after = append(after, podnet.Attachment{Network: el.Ref(), IfName: name, Requested: &podnet.Requested{Network: el.Ref(), Interface: el.Interface}})
		}
		if again := Diff(after, elems); !again.Empty() {
			t.Fatalf("after applying the change, Diff is %s: %+v", again, again)
		}
	})
}
