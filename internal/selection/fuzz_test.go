package selection

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse checks the properties every caller relies on, whatever the
// annotation holds: Parse never panics, returns elements or an error but never
// both, returns only the two documented error types, returns only elements that
// name a valid network and interface, and gives the same answer twice. And what
// it accepts, in either form, round-trips through the JSON form: the elements,
// written back as a JSON list (jsonForm), parse to the same elements, so the
// comma form is exactly a shorthand of the JSON form and no requested
// parameter is lost or changed by reading it. (An annotation is UTF-8, as the
// API server keeps it; other bytes cannot be written as JSON unchanged.)
func FuzzParse(f *testing.F) {
	seeds := []string{
		"", " ", "a", "ns/a", "a@net1", "ns/a@net1", " a , b ,", "a/b/c", "a@b@c",
		"A", "a_b", "a@abcdefghijklmnop", "a@x/y", "ns/", "/a", "a@",
		`[]`, `[{"name":"a"}]`, `{"name":"a"}`, `"a"`, `[null]`, `[{"name":"a"}] x`, `[{"name":`,
		`[{"name":"a","namespace":"","interface":"","interfaceRequest":"net2"}]`,
		`[{"name":"a","ips":["10.0.0.1/24","fd00::1"],"mac":"02:00:00:00:00:01"}]`,
		`[{"name":"a","ips":[]}]`, `[{"name":"a","infiniband-guid":"c2:11:22:33:44:55:66:77"}]`,
		`[{"name":"a","portMappings":[{"hostPort":80,"containerPort":80,"protocol":"UDP","hostIP":"::1"}]}]`,
		`[{"name":"a","portMappings":[{"hostPort":80.5,"containerPort":80}]}]`,
		`[{"name":"a","bandwidth":{"ingressRate":1,"ingressBurst":2,"egressRate":3,"egressBurst":4}}]`,
		`[{"name":"a","bandwidth":{}}]`, `[{"name":"a","cni-args":{"k":[1,{"x":null}]}}]`,
		`[{"name":"a","default-route":[]},{"name":"b","default-route":["10.0.0.1"]}]`,
		`[{"name":"a","ips":["10.0.0.1"],"ipam-claim-reference":"c"}]`,
		`[{"name":"a","deviceID":"0000:03:00.1","org.example.key":1}]`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		got, err := Parse(value, "pod-ns")
		if err != nil && got != nil {
			t.Fatalf("Parse(%q) returned both %v and %v", value, got, err)
		}
		if got != nil && len(got) == 0 {
			t.Fatalf("Parse(%q) returned an empty non-nil slice", value)
		}
		if err != nil {
			checkFuzzError(t, value, err)
		}
		for i, e := range got {
			checkFuzzElement(t, value, i, e)
		}
		again, errAgain := Parse(value, "pod-ns")
		if diff := cmp.Diff(got, again); diff != "" {
			t.Fatalf("Parse(%q) is not deterministic (-first +second):\n%s", value, diff)
		}
		if errString(err) != errString(errAgain) {
			t.Fatalf("Parse(%q) errors differ: %v then %v", value, err, errAgain)
		}
		if got == nil || !utf8.ValidString(value) {
			return
		}
		form := jsonForm(t, got)
		back, err := Parse(form, "other-ns")
		if err != nil {
			t.Fatalf("Parse(%q) accepted; its JSON form %s is refused: %v", value, form, err)
		}
		if diff := cmp.Diff(got, back); diff != "" {
			t.Fatalf("Parse(%q) differs from its JSON form %s (-value +JSON form):\n%s", value, form, diff)
		}
	})
}

// jsonForm writes elements as the JSON form of the annotation, each key present
// exactly when the element requests it.
func jsonForm(t *testing.T, elements []Element) string {
	t.Helper()
	list := make([]map[string]any, len(elements))
	for i, e := range elements {
		m := map[string]any{"name": e.Name, "namespace": e.Namespace}
		set := func(key string, value any, present bool) {
			if present {
				m[key] = value
			}
		}
		set("interface", e.Interface, e.Interface != "")
		set("ips", e.IPs, e.IPs != nil)
		set("mac", e.MAC, e.MAC != "")
		set("infiniband-guid", e.InfinibandGUID, e.InfinibandGUID != "")
		set("portMappings", e.PortMappings, e.PortMappings != nil)
		set("bandwidth", e.Bandwidth, e.Bandwidth != nil)
		set("cni-args", e.CNIArgs, e.CNIArgs != nil)
		gateways := []string{}
		for _, ip := range e.DefaultRoute {
			gateways = append(gateways, ip.String())
		}
		set("default-route", gateways, e.HasDefaultRoute)
		set("ipam-claim-reference", e.IPAMClaimReference, e.IPAMClaimReference != "")
		set("deviceID", e.DeviceID, e.DeviceID != "")
		list[i] = m
	}
	data, err := json.Marshal(list)
	if err != nil {
		t.Fatalf("elements %+v cannot be written as JSON: %v", elements, err)
	}
	return string(data)
}

// checkFuzzError fails unless err is one of the two documented error types
// with a usable message.
func checkFuzzError(t *testing.T, value string, err error) {
	t.Helper()
	var invalid *InvalidError
	var conflict *ConflictError
	if !errors.As(err, &invalid) && !errors.As(err, &conflict) {
		t.Fatalf("Parse(%q) returned %T, want *InvalidError or *ConflictError", value, err)
	}
	if invalid != nil && (invalid.Reason == "" || invalid.Index < -1) {
		t.Fatalf("Parse(%q) returned an incomplete InvalidError %#v", value, invalid)
	}
	if err.Error() == "" {
		t.Fatalf("Parse(%q) returned an error without message", value)
	}
}

// checkFuzzElement fails unless element i names a valid network and, when it
// requests one, a valid interface.
func checkFuzzElement(t *testing.T, value string, i int, e Element) {
	t.Helper()
	if e.Name == "" || e.Namespace == "" {
		t.Fatalf("Parse(%q) element %d has empty name or namespace: %+v", value, i, e)
	}
	if labelReason(e.Name) != "" || labelReason(e.Namespace) != "" {
		t.Fatalf("Parse(%q) element %d has an invalid reference %q", value, i, e.Ref())
	}
	if e.Interface != "" && interfaceReason(e.Interface) != "" {
		t.Fatalf("Parse(%q) element %d has an invalid interface %q", value, i, e.Interface)
	}
	if len(e.DefaultRoute) > 0 && !e.HasDefaultRoute {
		t.Fatalf("Parse(%q) element %d has gateways without HasDefaultRoute", value, i)
	}
}

// errString returns the message of err, or "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
