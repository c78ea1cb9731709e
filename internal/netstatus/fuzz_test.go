package netstatus

import (
	"bytes"
	"encoding/json"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"

	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// sameEntries compares entries as a reader of the annotation sees them: an
// empty list is the same as an absent one (omitempty drops it), and device-info
// is compared as the JSON value it holds, not as text (Encode compacts it and
// escapes <, > and & in it, as json.Marshal does with every json.RawMessage).
var sameEntries = cmp.Options{
	cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().Type() != reflect.TypeFor[json.RawMessage]()
	}, cmpopts.EquateEmpty()),
	cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().Type() == reflect.TypeFor[json.RawMessage]()
	}, cmp.Transformer("jsonValue", func(m json.RawMessage) any {
		if len(m) == 0 {
			return nil
		}
		dec := json.NewDecoder(bytes.NewReader(m))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return "invalid:" + string(m)
		}
		return v
	})),
}

// annotationSeeds are network-status values as upstream Multus and this
// package write them, and damaged ones.
var annotationSeeds = []string{
	`[{"name":"cbr0","interface":"eth0","ips":["10.244.1.4"],"mac":"ee:40:10:7f:b9:a5","default":true,"dns":{}},` +
		`{"name":"default/macvlan-conf","interface":"net1","ips":["192.168.1.200"],"mac":"86:1d:96:ff:55:0d","dns":{}}]`,
	`[{"name":"ns1/sriov-a","interface":"net1","ips":["10.56.217.171","fd00::171"],"mac":"ba:a5:bb:4c:aa:1d","mtu":1500,` +
		`"default":false,"dns":{"nameservers":["10.56.0.10"],"domain":"example.com","search":["example.com"],"options":["ndots:2"]},` +
		`"device-info":{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:18:02.5"}},"gateway":["10.56.217.1"],"default-route":["10.56.217.1"]}]`,
	"[\n  {\n    \"name\": \"k8s-pod-network\",\n    \"ips\": [\n      \"10.244.0.5\"\n    ],\n    \"default\": true,\n    \"dns\": {}\n  }\n]",
	`[{"name":"n","device-info":{ "type" : "vdpa", "vdpa": {"parent-device":"vdpa:0000:65:00.3"} }}]`,
	`[{"name":"n","device-info":null,"dns":null,"ips":[],"future-key":{"a":[1,2]}}]`,
	`[{"name":"n","device-info":"<&>"}]`,
	`[null]`, `[]`, `null`, ``, ` `, `{}`, `[{"name":1}]`, `[{"name":"n","mtu":1.5}]`, `[{"name":`, `[{"Name":"n","DEFAULT":true}]`,
}

// FuzzDecode reads the network-status annotation, whatever a pod carries.
// Properties: Decode never panics; it returns a non-nil list or an error that
// names the annotation, never both; and what it accepts round-trips: with
// d = Decode(x), Decode(Encode(d)) equals d (sameEntries), and Encode is then
// a fixed point: Encode(Decode(Encode(d))) is Encode(d) byte for byte, so a
// component that reads the annotation and writes it back changes nothing.
func FuzzDecode(f *testing.F) {
	for _, s := range annotationSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		got, err := Decode(value)
		if err != nil {
			if got != nil || !strings.Contains(err.Error(), Annotation) {
				t.Fatalf("Decode(%q) = %v, %v; want no entries and an error naming %s", value, got, err, Annotation)
			}
			return
		}
		if got == nil {
			t.Fatalf("Decode(%q) = nil without an error, want a list", value)
		}
		encoded, err := Encode(got)
		if err != nil {
			t.Fatalf("Encode(Decode(%q)): %v", value, err)
		}
		back, err := Decode(encoded)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) = %v\nencoded: %s", value, err, encoded)
		}
		if diff := cmp.Diff(got, back, sameEntries); diff != "" {
			t.Fatalf("round trip of %q changed the entries (-decoded +re-decoded):\n%s", value, diff)
		}
		again, err := Encode(back)
		if err != nil || again != encoded {
			t.Fatalf("Encode is not a fixed point: %q then %q (%v)", encoded, again, err)
		}
	})
}

// FuzzEncode builds entries from fuzzed fields, as FromResult and the engine
// fill them. Properties: Encode fails exactly when a device-info is not JSON;
// otherwise its value is one line that Decode reads back equal (sameEntries).
// Strings are made valid UTF-8 first: entries come from CNI results and NADs,
// which are JSON already, and JSON cannot carry other bytes unchanged.
func FuzzEncode(f *testing.F) {
	f.Add("ns1/sriov-a", "net1", "10.56.217.171", "ba:a5:bb:4c:aa:1d", 1500, false, "10.56.0.10", "example.com",
		[]byte(`{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:18:02.5"}}`), "10.56.217.1", "10.56.217.1", uint8(2))
	f.Add("cbr0", "eth0", "fd00::5", "", 0, true, "", "", []byte(nil), "", "", uint8(1))
	f.Add("n", "", "", "", -1, false, "", "", []byte("{\n \"a\": \"<b>\"\n}"), "", "", uint8(0))
	f.Add("n", "", "", "", 0, false, "", "", []byte(`{`), "", "", uint8(3))
	f.Add("\u2028", "é", "", "", 0, false, "", "", []byte(`null`), "", "", uint8(1))
	f.Fuzz(func(t *testing.T, name, iface, ip, mac string, mtu int, isDefault bool, nameserver, domain string,
		deviceInfo []byte, gateway, defaultRoute string, count uint8,
	) {
		e := Entry{
			Name: valid(name), Interface: valid(iface), Mac: valid(mac), Mtu: mtu, Default: isDefault,
			DeviceInfo: deviceInfo,
		}
		if ip != "" {
			e.IPs = []string{valid(ip), valid(ip)}
		}
		if nameserver != "" || domain != "" {
			e.DNS = &DNS{Nameservers: []string{valid(nameserver)}, Domain: valid(domain)}
		}
		if gateway != "" {
			e.Gateway = []string{valid(gateway)}
		}
		if defaultRoute != "" {
			e.DefaultRoute = []string{valid(defaultRoute)}
		}
		entries := make([]Entry, int(count%4))
		for i := range entries {
			entries[i] = e
		}
		value, err := Encode(entries)
		if bad := len(entries) > 0 && len(deviceInfo) > 0 && !json.Valid(deviceInfo); bad != (err != nil) {
			t.Fatalf("Encode error %v, want one exactly when device-info %q is not JSON", err, deviceInfo)
		}
		if err != nil {
			return
		}
		if strings.ContainsAny(value, "\n\r") {
			t.Fatalf("Encode() = %q, want one line", value)
		}
		got, err := Decode(value)
		if err != nil {
			t.Fatalf("Decode(Encode()) = %v\nvalue: %s", err, value)
		}
		if diff := cmp.Diff(entries, got, sameEntries); diff != "" {
			t.Fatalf("Decode(Encode()) differs (-built +read):\n%s\nvalue: %s", diff, value)
		}
	})
}

// valid returns s with every invalid UTF-8 byte replaced by U+FFFD, as a JSON
// decoder reads it.
func valid(s string) string {
	return string([]rune(s))
}

// resultSeeds are delegate ADD results of several CNI versions, as the
// reference plugins print them.
var resultSeeds = []string{
	`{"cniVersion":"1.0.0","interfaces":[{"name":"cni0","mac":"62:f4:3a:1d:0b:5c"},{"name":"veth1","mac":"aa:bb:cc:dd:ee:ff"},` +
		`{"name":"eth0","mac":"0a:58:0a:f4:01:04","sandbox":"/var/run/netns/cni-1"}],` +
		`"ips":[{"interface":2,"address":"10.244.1.4/24","gateway":"10.244.1.1"},{"interface":2,"address":"fd00:10:244:1::4/64","gateway":"fd00:10:244:1::1"}],` +
		`"routes":[{"dst":"0.0.0.0/0"},{"dst":"::/0","gw":"fd00:10:244:1::1"}],"dns":{"nameservers":["10.96.0.10"],"search":["svc.cluster.local"]}}`,
	`{"cniVersion":"1.1.0","interfaces":[{"name":"net1","mac":"02:00:00:00:00:01","mtu":9000,"sandbox":"/proc/1/ns/net","socketPath":"/s","pciID":"0000:03:00.1"}],` +
		`"ips":[{"interface":0,"address":"192.168.1.200/24"}],"routes":[{"dst":"0.0.0.0/0","gw":"192.168.1.1","mtu":1400,"table":5}]}`,
	`{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"version":"4","interface":0,"address":"10.1.1.5/16"}],"dns":{}}`,
	`{"cniVersion":"0.3.1","ips":[{"version":"6","interface":-1,"address":"fd00::5/64","gateway":"fd00::1"}],"routes":[{"dst":"::/0"}]}`,
	`{"cniVersion":"0.2.0","ip4":{"ip":"10.4.0.7/24","gateway":"10.4.0.1","routes":[{"dst":"0.0.0.0/0"}]},"ip6":{"ip":"fd04::7/64"},"dns":{"nameservers":["10.96.0.10"]}}`,
	`{"cniVersion":"0.1.0","ip4":{"ip":"192.168.5.3/24"}}`,
	`{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"interface":7,"address":"10.0.0.1/8"},{"address":"10.0.0.2/8"}],"routes":[{"dst":"0.0.0.0/0"}]}`,
	`{"cniVersion":"1.0.0"}`, `{}`, `{"cniVersion":"9.9.9"}`, `{"cniVersion":"1.0.0","ips":[{"address":"1.2.3.4"}]}`,
}

// FuzzFromResult turns whatever a delegate printed, once libcni has parsed it as
// the version it declares, into an entry. Properties: FromResult never panics;
// the entry keeps the network name and default flag it was given, names the
// requested interface when the result puts one by that name in the sandbox,
// lists only addresses (without a prefix length) and gateways that parse as
// IPs, without duplicate gateways; and the entry survives Encode and Decode
// unchanged.
func FuzzFromResult(f *testing.F) {
	for _, s := range resultSeeds {
		f.Add([]byte(s), "eth0", false)
	}
	f.Fuzz(func(t *testing.T, data []byte, ifName string, isDefault bool) {
		ifName = valid(ifName) // CNI_IFNAME; store's FuzzRecordTamper covers one that is not UTF-8
		version, err := create.DecodeVersion(data)
		if err != nil {
			return
		}
		result, err := create.Create(version, data)
		if err != nil {
			return
		}
		e, err := FromResult(result, "ns1/net-a", ifName, isDefault)
		if err != nil {
			return
		}
		if e.Name != "ns1/net-a" || e.Default != isDefault {
			t.Fatalf("entry %+v lost the name or default flag it was given", e)
		}
		for _, list := range [][]string{e.IPs, e.Gateway} {
			for _, ip := range list {
				if net.ParseIP(ip) == nil {
					t.Fatalf("entry %+v lists %q, which is not an IP address", e, ip)
				}
			}
		}
		for i, gw := range e.Gateway {
			if slices.Contains(e.Gateway[:i], gw) {
				t.Fatalf("entry %+v lists gateway %q twice", e, gw)
			}
		}
		current, err := toCurrent(result)
		if err != nil {
			t.Fatalf("FromResult converted a result toCurrent refuses: %v", err)
		}
		if current != nil && slices.ContainsFunc(current.Interfaces, func(i *types100.Interface) bool {
			return i != nil && i.Sandbox != "" && i.Name == ifName
		}) && e.Interface != ifName {
			t.Fatalf("entry names interface %q; the result has %q in the sandbox", e.Interface, ifName)
		}
		value, err := Encode([]Entry{e})
		if err != nil {
			t.Fatalf("Encode(%+v): %v", e, err)
		}
		back, err := Decode(value)
		if err != nil {
			t.Fatalf("Decode(Encode()): %v", err)
		}
		if diff := cmp.Diff([]Entry{e}, back, sameEntries); diff != "" {
			t.Fatalf("Decode(Encode()) differs (-entry +read):\n%s", diff)
		}
	})
}
