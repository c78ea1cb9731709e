package attach

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
)

// att is a recorded attachment; requested "" marks one not made for an
// annotation element (the cluster network, a default network).
func att(network, ifName, requested, requestedIf string) podnet.Attachment {
	a := podnet.Attachment{Network: network, IfName: ifName}
	if requested != "" {
		a.Requested = &podnet.Requested{Network: requested, Interface: requestedIf}
	}
	return a
}

func ifNames(atts []podnet.Attachment) []string {
	var out []string
	for _, a := range atts {
		out = append(out, a.IfName)
	}
	return out
}

// TestDiff: only attachments made for annotation elements are compared; a
// named element matches its interface, an unnamed one the attachments of its
// network made without a name, in order.
func TestDiff(t *testing.T) {
	cluster := att("cluster", "eth0", "", "")
	dflt := att("kube-system/extra", "net1", "", "")
	a1 := att("ns1/a", "net1", "ns1/a", "")
	b2 := att("ns1/b", "net2", "ns1/b", "")
	bFoo := att("ns1/b", "foo", "ns1/b", "foo")
	a3 := att("ns1/a", "net3", "ns1/a", "")
	tests := []struct {
		name       string
		atts       []podnet.Attachment
		annotation string
		wantRemove []string
		wantAdd    []string
	}{
		{"nothing changed", []podnet.Attachment{cluster, a1, b2}, "a,b", nil, nil},
		{"one added", []podnet.Attachment{cluster, a1}, "a,b", nil, []string{"ns1/b"}},
		{"first removed, second keeps its name", []podnet.Attachment{cluster, a1, b2}, "b", []string{"net1"}, nil},
		{"all removed, cluster network stays", []podnet.Attachment{cluster, a1, b2}, "", []string{"net1", "net2"}, nil},
		{"default networks are never removed", []podnet.Attachment{cluster, dflt}, "", nil, nil},
		{"named element matches its interface only", []podnet.Attachment{cluster, b2}, `[{"name":"b","interface":"foo"}]`, []string{"net2"}, []string{"ns1/b"}},
		{"named element kept", []podnet.Attachment{cluster, bFoo, b2}, `[{"name":"b","interface":"foo"},{"name":"b"}]`, nil, nil},
		{"one of two of a network removed", []podnet.Attachment{cluster, a1, a3}, "a", []string{"net3"}, nil},
		{"order does not matter", []podnet.Attachment{cluster, a1, b2}, "b,a", nil, nil},
		{"another namespace is another network", []podnet.Attachment{cluster, a1}, "other/a", []string{"net1"}, []string{"other/a"}},
		{"a /delegate attachment stays", []podnet.Attachment{cluster, att("hot", "net9", "", "")}, "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var elems = parseSel(t, tt.annotation)
			c := Diff(tt.atts, elems)
			var add []string
			for _, el := range c.Add {
				add = append(add, el.Ref())
			}
			if diff := cmp.Diff(tt.wantRemove, ifNames(c.Remove)); diff != "" {
				t.Errorf("removed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantAdd, add); diff != "" {
				t.Errorf("added (-want +got):\n%s", diff)
			}
			if c.Empty() != (len(tt.wantAdd)+len(tt.wantRemove) == 0) {
				t.Errorf("Empty() = %v", c.Empty())
			}
		})
	}
}

// TestPlugNames: a network added to a running sandbox gets the name ADD would
// give it when that is free, else the next free net<N>; a requested name the
// sandbox uses fails; every added attachment is marked Requested and gets the
// pod's CNI_ARGS.
func TestPlugNames(t *testing.T) {
	n := nads([3]string{"ns1", "a", `{"cniVersion":"1.0.0","type":"bridge"}`},
		[3]string{"ns1", "b", `{"cniVersion":"1.0.0","type":"macvlan"}`})
	cluster := att("cluster", "eth0", "", "")
	tests := []struct {
		name       string
		existing   []podnet.Attachment
		annotation string
		add        string
		want       []string
		wantErr    bool
	}{
		{"first network of the pod", []podnet.Attachment{cluster}, "a", "a", []string{"net1"}, false},
		{"second network", []podnet.Attachment{cluster, att("ns1/a", "net1", "ns1/a", "")}, "a,b", "b", []string{"net2"}, false},
		{"re-added network gets its old name back", []podnet.Attachment{cluster, att("ns1/b", "net2", "ns1/b", "")}, "a,b", "a", []string{"net1"}, false},
		{"position taken: next free", []podnet.Attachment{cluster, att("ns1/a", "net2", "ns1/a", "")}, "b,a", "b", []string{"net1"}, false},
		{"position taken by an older one", []podnet.Attachment{cluster, att("ns1/a", "net1", "ns1/a", "")}, "b,a", "b", []string{"net2"}, false},
		{"requested name", []podnet.Attachment{cluster}, `[{"name":"a","interface":"blue"}]`, `[{"name":"a","interface":"blue"}]`, []string{"blue"}, false},
		{"requested name skipped by generated ones", []podnet.Attachment{cluster}, `[{"name":"a"},{"name":"b","interface":"net1"}]`, `[{"name":"a"}]`, []string{"net2"}, false},
		{"requested name in use", []podnet.Attachment{cluster, att("ns1/a", "blue", "", "")}, `[{"name":"b","interface":"blue"}]`, `[{"name":"b","interface":"blue"}]`, nil, true},
		{"runtime's name", []podnet.Attachment{cluster}, `[{"name":"b","interface":"eth0"}]`, `[{"name":"b","interface":"eth0"}]`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := addRequest(t, "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-1")
			in := Input{Conf: testConf(t, testDir, `,"clusterNetwork":"c"`), Req: req, Pod: testPod(), NADs: n,
				Selections: parseSel(t, tt.annotation)}
			planned, err := Plug(context.Background(), in, tt.existing, parseSel(t, tt.add))
			var conflict *InterfaceConflictError
			if tt.wantErr {
				if !errors.As(err, &conflict) {
					t.Fatalf("Plug = %v, want an *InterfaceConflictError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range planned {
				names = append(names, p.IfName)
				if p.Requested == nil || p.Requested.Network != p.Selection.Ref() || p.Requested.Interface != p.Selection.Interface {
					t.Errorf("%s: Requested = %+v, want its element", p.IfName, p.Requested)
				}
				if v, _ := request.Args(p.CNIArgs).Get("K8S_POD_UID"); v != "uid-1" {
					t.Errorf("%s: CNI_ARGS %v, want the pod's with its UID", p.IfName, p.CNIArgs)
				}
			}
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlugDevices: a device network added to a running pod gets a device of
// its resource that no attachment of the sandbox holds; none left fails.
func TestPlugDevices(t *testing.T) {
	existing := []podnet.Attachment{att("cluster", "eth0", "", ""), att("ns1/sriov-a", "net1", "ns1/sriov-a", "")}
	id, _ := json.Marshal(vf1)
	existing[1].CapabilityArgs = map[string]json.RawMessage{"deviceID": id}
	in := Input{Conf: testConf(t, testDir, `,"clusterNetwork":"c"`), Req: addRequest(t, ""), Pod: testPod(), NADs: deviceNADs(),
		Devices: &fakeDevices{ids: map[string][]string{sriovResource: {vf2, vf1}}}, Selections: parseSel(t, "sriov-a,sriov-c")}
	planned, err := Plug(context.Background(), in, existing, parseSel(t, "sriov-c"))
	if err != nil {
		t.Fatal(err)
	}
	if planned[0].DeviceID != vf2 || planned[0].DeviceInfoFile == "" {
		t.Errorf("device %q, device-info %q: want %s and a file", planned[0].DeviceID, planned[0].DeviceInfoFile, vf2)
	}
	existing = append(existing, planned[0].Attachment)
	in.Selections = parseSel(t, "sriov-a,sriov-c,sriov-b")
	var derr *DeviceError
	if _, err := Plug(context.Background(), in, existing, parseSel(t, "sriov-b")); !errors.As(err, &derr) {
		t.Errorf("third device network: %v, want a *DeviceError", err)
	}
}

// TestPlugRefusals: what ADD refuses, adding refuses: a missing NAD, another
// namespace under isolation, more networks than allowed.
func TestPlugRefusals(t *testing.T) {
	n := nads([3]string{"ns1", "a", `{"cniVersion":"1.0.0","type":"bridge"}`}, [3]string{"other", "x", `{"cniVersion":"1.0.0","type":"bridge"}`})
	tests := []struct {
		name, extra, annotation string
		want                    any
	}{
		{"missing NAD", "", "missing", new(*NetworkNotFoundError)},
		{"isolation", `,"namespaceIsolation":true`, "other/x", new(*RefusedError)},
		{"too many", `,"maxNetworksPerPod":1`, "a,other/x", new(*TooManyNetworksError)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Conf: testConf(t, testDir, `,"clusterNetwork":"c"`+tt.extra), Req: addRequest(t, ""), Pod: testPod(), NADs: n,
				Selections: parseSel(t, tt.annotation)}
			elems := parseSel(t, tt.annotation)
			_, err := Plug(context.Background(), in, nil, elems[len(elems)-1:])
			if err == nil || !errors.As(err, tt.want) {
				t.Errorf("Plug = %v, want %T", err, tt.want)
			}
		})
	}
}
