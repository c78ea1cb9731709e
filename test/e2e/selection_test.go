package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

// ifnames returns "network-config-name@ifname" of each recorded ADD, in order.
func (e *env) ifnames() []string {
	var out []string
	for _, r := range e.recordsFor("ADD") {
		var c struct{ Name string }
		_ = r.Conf(&c)
		out = append(out, c.Name+"@"+r.Env["CNI_IFNAME"])
	}
	return out
}

// TestSelectionForms runs both annotation forms, the
// namespace/name@ifname extension, generated net<N> names that skip requested
// ones, and the same NAD attached twice as two attachments.
func TestSelectionForms(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "0.4.0"
		tests := []struct {
			name       string
			annotation string
			want       string
		}{
			{"R-4.1.1 comma list", "a, NS/b", "a@net1,b@net2"},
			{"comma list with interface names", "a@left,NS/b@right", "a@left,b@right"},
			{"R-4.1.2 JSON list", `[{"name":"a"},{"name":"b","namespace":"NS","interface":"data9"}]`, "a@net1,b@data9"},
			{"R-4.2.1 generated names skip requested ones", `[{"name":"a"},{"name":"b","interface":"net1"}]`, "a@net2,b@net1"},
			{"R-4.2 the same network twice", "a,a", "a@net1,a@net2"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := newEnv(t)
				e.nad("a", e.recorderConf(v, "a", nil), nil)
				e.nad("b", e.recorderConf(v, "b", nil), nil)
				conf := e.multusConf(v, map[string]any{"delegates": []any{e.recorderMap(v, "cluster")}})
				_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": strings.ReplaceAll(tt.annotation, "NS", e.namespace)})
				e.add(conf, sb)
				if got := strings.Join(e.ifnames(), ","); got != "cluster@eth0,"+tt.want {
					t.Errorf("attachments %s, want cluster@eth0,%s", got, tt.want)
				}
				if st := e.networkStatus("pod-1"); len(st) != 1+strings.Count(tt.want, ",")+1 {
					t.Errorf("R-4.2: %d status entries for %s", len(st), tt.want)
				}
				e.del(conf, sb)
				if dels := len(e.recordsFor("DEL")); dels != 1+strings.Count(tt.want, ",")+1 {
					t.Errorf("%d DELs, want one per attachment", dels)
				}
			})
		}
	})
}

// TestInterfaceConflictFails: R-4.1.2.1.5, a requested interface name that an
// earlier attachment uses fails the attachment, before anything runs.
func TestInterfaceConflictFails(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		e.nad("a", e.recorderConf(v, "a", nil), nil)
		conf := e.multusConf(v, map[string]any{"delegates": []any{e.recorderMap(v, "cluster")}})
		for name, ann := range map[string]string{
			"pod-dup":  `[{"name":"a","interface":"x0"},{"name":"a","interface":"x0"}]`,
			"pod-eth0": `[{"name":"a","interface":"eth0"}]`,
		} {
			_, sb, _ := e.pod(name, map[string]string{"k8s.v1.cni.cncf.io/networks": ann})
			_, err := e.rt.Add(e.ctx, conf, sb)
			if ce := cniError(t, err); ce.Code != cnicode.InterfaceConflict || !strings.Contains(ce.Msg, "R-4.1.2.1.5") {
				t.Errorf("%s: got %v, want code %d citing R-4.1.2.1.5", name, err, cnicode.InterfaceConflict)
			}
		}
		if n := len(e.recordsFor("ADD")); n != 0 {
			t.Errorf("%d delegates ran for refused requests", n)
		}
	})
}

// TestInvalidAnnotationIsIgnored follows the standard: an invalid annotation SHALL
// be ignored (R-4.1.2.1.3, R-4.1.2.1.4, R-4.1.2.1.9 ...), so the pod gets its
// cluster network and a Warning event that names the field; strictNetworkSelection
// fails the ADD instead, as upstream does.
func TestInvalidAnnotationIsIgnored(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		invalid := map[string]string{
			"R-4.1.2.1.3 ips":           `[{"name":"a","ips":["10.0.0.300"]}]`,
			"R-4.1.2.1.4 mac":           `[{"name":"a","mac":"zz"}]`,
			"R-4.1.2.1.9 default-route": `[{"name":"a","default-route":[]},{"name":"a","default-route":[]}]`,
			"R-4.1.1 name":              "Not_A_Label",
		}
		i := 0
		for req, ann := range invalid {
			i++
			t.Run(req, func(t *testing.T) {
				e := newEnv(t)
				e.nad("a", e.recorderConf(v, "a", nil), nil)
				pod := fmt.Sprintf("pod-%d", i)
				_, sb, _ := e.pod(pod, map[string]string{"k8s.v1.cni.cncf.io/networks": ann})
				conf := e.multusConf(v, map[string]any{"delegates": []any{e.recorderMap(v, "cluster")}})
				e.add(conf, sb)
				if got := strings.Join(e.ifnames(), ","); got != "cluster@eth0" {
					t.Errorf("attachments %s, want the cluster network only", got)
				}
				field := strings.Fields(req)[1]
				if evs := e.eventsWith(pod, "Warning InvalidNetworkSelection"); !strings.Contains(evs, "Warning InvalidNetworkSelection") || !strings.Contains(evs, field) {
					t.Errorf("no Warning event naming %s: %s", field, evs)
				}
				e.del(conf, sb)

				strict := e.multusConf(v, map[string]any{"delegates": []any{e.recorderMap(v, "cluster")}, "strictNetworkSelection": true})
				_, sb2, _ := e.pod(pod+"-strict", map[string]string{"k8s.v1.cni.cncf.io/networks": ann})
				_, err := e.rt.Add(e.ctx, strict, sb2)
				if ce := cniError(t, err); ce.Code != cnicode.InvalidSelection || !strings.Contains(ce.Msg, e.namespace+"/"+pod+"-strict") {
					t.Errorf("strict: got %v, want code %d naming the pod", err, cnicode.InvalidSelection)
				}
			})
		}
	})
}

// TestIPsWithIPAMClaimIsAnError: R-4.1.2.1.11 makes the combination an error, not
// an ignored annotation.
func TestIPsWithIPAMClaimIsAnError(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		e.nad("a", e.recorderConf(v, "a", map[string]any{"capabilities": map[string]bool{"ips": true}}), nil)
		_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": `[{"name":"a","ips":["10.1.1.1/24"],"ipam-claim-reference":"claim-1"}]`})
		_, err := e.rt.Add(e.ctx, e.multusConf(v, map[string]any{"delegates": []any{e.recorderMap(v, "cluster")}}), sb)
		if ce := cniError(t, err); ce.Code != cnicode.InvalidSelection || !strings.Contains(ce.Msg, "R-4.1.2.1.11") {
			t.Errorf("got %v, want an error citing R-4.1.2.1.11", err)
		}
	})
}

// TestNamespaceIsolation, with namespaceIsolation a pod may use NADs of its
// own namespace and of globalNamespaces only; a refused reference fails the ADD
// and runs nothing.
func TestNamespaceIsolation(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		other, global := e.namespace+"-other", e.namespace+"-global"
		e.nad(other+"/x", e.recorderConf(v, "x", nil), nil)
		e.nad(global+"/g", e.recorderConf(v, "g", nil), nil)
		e.nad("own", e.recorderConf(v, "own", nil), nil)
		conf := e.multusConf(v, map[string]any{
			"delegates": []any{e.recorderMap(v, "cluster")}, "namespaceIsolation": true, "globalNamespaces": global,
		})
		_, sb, _ := e.pod("allowed", map[string]string{"k8s.v1.cni.cncf.io/networks": "own," + global + "/g"})
		e.add(conf, sb)
		if got := strings.Join(e.ifnames(), ","); got != "cluster@eth0,own@net1,g@net2" {
			t.Errorf("allowed pod got %s", got)
		}
		e.del(conf, sb)

		before := len(e.recordsFor("ADD"))
		_, sb2, _ := e.pod("refused", map[string]string{"k8s.v1.cni.cncf.io/networks": "own," + other + "/x"})
		_, err := e.rt.Add(e.ctx, conf, sb2)
		if ce := cniError(t, err); ce.Code != cnicode.NetworkRefused || !strings.Contains(ce.Msg, other+"/x") || !strings.Contains(ce.Msg, "R-7.4") {
			t.Errorf("got %v, want code %d naming %s/x and R-7.4", err, cnicode.NetworkRefused, other)
		}
		if n := len(e.recordsFor("ADD")) - before; n != 0 {
			t.Errorf("%d delegates ran for a refused pod", n)
		}
		if _, err := os.Stat(e.recordFile(sb2)); !os.IsNotExist(err) {
			t.Errorf("a record was left for the refused pod")
		}

		// Without isolation the same reference works.
		open := e.multusConf(v, map[string]any{"delegates": []any{e.recorderMap(v, "cluster")}})
		_, sb3, _ := e.pod("open", map[string]string{"k8s.v1.cni.cncf.io/networks": other + "/x"})
		e.add(open, sb3)
		e.del(open, sb3)
	})
}
