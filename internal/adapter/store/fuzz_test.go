package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/polynet-cni/polynet/internal/jsoncmp"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// sameRecord compares records as DEL reads them: every field exactly, except
// that a capability argument is compared as JSON text without insignificant
// white space (json.Marshal compacts a json.RawMessage, so a record saved with
// `{"a": 1}` reads back as `{"a":1}`, which a delegate reads the same), and an
// empty map or list is the same as none (omitempty drops both).
var sameRecord = cmp.Options{
	jsoncmp.Equivalent,
}

// FuzzRecordTamper checks the two properties the checksum is for, on a record
// built from fuzzed fields:
//
//  1. Round trip: the bytes Save writes (encode) decode to a record equal to
//     the one saved (sameRecord), and decode never changes what is torn down.
//  2. Tamper evidence: let e' be those bytes with one byte replaced, inserted or
//     deleted at any position. Then Decode(e') is either a *CorruptError, or a
//     record equal (sameRecord) to the one saved. An accepted alteration can
//     only be one that changes no decoded value: white space between tokens,
//     the case of a key (encoding/json matches keys without regard to case), or
//     the unused low bits of the last base64 character of a config. Any change
//     of a value is refused.
//
// A record whose strings are not valid UTF-8 cannot be written as JSON without
// changing them; Save must then refuse it rather than write a record that reads
// back different (property 1 covers it).
func FuzzRecordTamper(f *testing.F) {
	f.Add("c1", "eth0", "/var/run/netns/x", "ns1", "pod-1", "u-1", "1.0.0", int64(1796000523000000000),
		"cbr0", []byte(`{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"bridge"}]}`),
		"bandwidth", []byte(`{"ingressRate":1000000000,"ingressBurst":2000000000}`), "K8S_POD_NAME", "pod-1",
		uint8(0), uint16(10), byte('X'))
	f.Add("a8f3e1", "net1", "", "default", "p", "", "0.4.0", int64(0),
		"ns1/macvlan", []byte(`{"cniVersion":"0.4.0", "name":"macvlan","type":"macvlan"}`),
		"ips", []byte(`["10.1.1.1/24"]`), "IgnoreUnknown", "true",
		uint8(1), uint16(40), byte(' '))
	f.Add("c2", "eth0", "/proc/1/ns/net", "kube-system", "coredns-1", "0f0e", "1.1.0", int64(1),
		"kube-system/sriov", []byte{0xff, 0x00, '{'}, "mac", []byte(`"c2:00:00:00:00:01"`), "", "",
		uint8(2), uint16(200), byte(0))
	f.Fuzz(func(t *testing.T, containerID, ifName, netns, podNS, podName, podUID, cniVersion string, created int64,
		network string, config []byte, capKey string, capValue []byte, argKey, argValue string,
		op uint8, pos uint16, b byte,
	) {
		r := fuzzRecord(containerID, ifName, netns, podNS, podName, podUID, cniVersion, created,
			network, config, capKey, capValue, argKey, argValue)
		want := cloneRecord(t, r)
		r.Version = FormatVersion
		data, err := encode(r)
		if err != nil {
			return // Save refuses what it cannot write: allowed
		}
		got, err := Decode(data)
		if err != nil {
			t.Fatalf("Decode of a fresh encoding: %v\n%s", err, data)
		}
		want.Version, want.Checksum = FormatVersion, got.Checksum
		if diff := cmp.Diff(want, got, sameRecord); diff != "" {
			t.Fatalf("the record read back is not the one saved (-saved +read):\n%s", diff)
		}

		altered := alter(data, op, pos, b)
		if bytes.Equal(altered, data) {
			return
		}
		back, err := Decode(altered)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) || back != nil {
				t.Fatalf("altered record: %v (%T) with %v, want a *CorruptError alone", err, err, back)
			}
			return
		}
		want.Checksum = back.Checksum
		if diff := cmp.Diff(want, back, sameRecord); diff != "" {
			t.Fatalf("an altered record was accepted with other content (-saved +read):\n%s\nsaved:   %s\naltered: %s",
				diff, data, altered)
		}
	})
}

// fuzzRecord builds a record the store must accept: a container ID, and two
// attachments, each with an interface name and a configuration.
func fuzzRecord(containerID, ifName, netns, podNS, podName, podUID, cniVersion string, created int64,
	network string, config []byte, capKey string, capValue []byte, argKey, argValue string,
) *podnet.Record {
	r := &podnet.Record{
		ContainerID: orDefault(containerID, "c1"),
		IfName:      orDefault(ifName, "eth0"),
		NetNS:       netns,
		Pod:         podnet.PodRef{Namespace: podNS, Name: podName, UID: podUID},
		CNIVersion:  cniVersion,
		Created:     time.Unix(0, created).UTC(),
	}
	if len(config) == 0 {
		config = []byte(`{"type":"bridge"}`)
	}
	a := podnet.Attachment{Network: network, IfName: r.IfName, Config: config, Default: true}
	second := podnet.Attachment{Network: "ns/" + network, IfName: "net1", Config: slices.Concat(config, config)}
	if json.Valid(capValue) {
		second.CapabilityArgs = map[string]json.RawMessage{capKey: capValue}
	}
	if argKey != "" {
		second.CNIArgs = [][2]string{{argKey, argValue}, {"K8S_POD_NAME", podName}}
	}
	r.Attachments = []podnet.Attachment{a, second}
	return r
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// cloneRecord copies r deeply, so that what encode sets on r does not reach the
// copy the test compares with.
func cloneRecord(t *testing.T, r *podnet.Record) *podnet.Record {
	t.Helper()
	c := *r
	c.Attachments = nil
	for _, a := range r.Attachments {
		a.Config = slices.Clone(a.Config)
		a.CNIArgs = slices.Clone(a.CNIArgs)
		if a.CapabilityArgs != nil {
			m := make(map[string]json.RawMessage, len(a.CapabilityArgs))
			for k, v := range a.CapabilityArgs {
				m[k] = slices.Clone(v)
			}
			a.CapabilityArgs = m
		}
		c.Attachments = append(c.Attachments, a)
	}
	return &c
}

// alter returns a copy of data with one byte changed at pos (modulo the
// length): op%3 0 replaces it with b, 1 inserts b before it, 2 deletes it.
func alter(data []byte, op uint8, pos uint16, b byte) []byte {
	out := slices.Clone(data)
	if len(out) == 0 {
		return append(out, b)
	}
	i := int(pos) % len(out)
	switch op % 3 {
	case 0:
		out[i] = b
	case 1:
		out = slices.Insert(out, i, b)
	default:
		out = slices.Delete(out, i, i+1)
	}
	return out
}

// TestTamperEveryByte replaces each byte of a saved record, one at a time, by
// every other byte value: each damaged copy is refused, or reads back as the
// record that was saved. It is FuzzRecordTamper's second property, exhaustive
// for one realistic record.
func TestTamperEveryByte(t *testing.T) {
	s := New(t.TempDir())
	want := sample("c1")
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(s.Path("c1"))
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for i := range data {
		for n := range 256 {
			v := byte(n)
			if v == data[i] {
				continue
			}
			altered := slices.Clone(data)
			altered[i] = v
			got, err := Decode(altered)
			if err != nil {
				var ce *CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("byte %d = %q: %v (%T), want a *CorruptError", i, v, err, err)
				}
				continue
			}
			accepted++
			if diff := cmp.Diff(want, got, sameRecord); diff != "" {
				t.Fatalf("byte %d = %q was accepted with other content (-saved +read):\n%s", i, v, diff)
			}
		}
	}
	t.Logf("%d single-byte changes of %d bytes; %d changed nothing that is read and were accepted", len(data)*255, len(data), accepted)
}

// FuzzLoadLegacy reads upstream Multus's cache file of a sandbox, whatever it
// holds. Properties: LoadLegacy never panics; a refusal is a *CorruptError that
// names the file, without attachments; an accepted file gives one attachment
// per delegate of the JSON list, in order, the first the default network with
// the runtime's interface name, each with an interface name and configuration
// bytes, with capability arguments that are JSON of the keys upstream passes;
// and reading twice gives the same answer.
func FuzzLoadLegacy(f *testing.F) {
	for _, seed := range []string{
		`[{"Name":"cbr0","Bytes":"eyJ0eXBlIjoiYnJpZGdlIn0=","IsFilterV4Gateway":false},
		{"Name":"ns/a","macRequest":"c2:00:00:00:00:01","ipRequest":["10.1.1.1/24"],"Bytes":"eyJ0eXBlIjoibWFjdmxhbiJ9"},
		{"Name":"ns/b","ifnameRequest":"data0","Bytes":"eyJ0eXBlIjoicHRwIn0="}]`,
		`[{"Name":"ns/c","deviceID":"0000:03:00.1","infinibandGUIDRequest":"c2:11:22:33:44:55:66:77","Bytes":"e30="}]`,
		`[]`, `null`, `{}`, `[null]`, `[{"Name":"x"}]`, `[{"Bytes":"not base64"}]`, `[{"Name":"x"`, ``,
	} {
		f.Add([]byte(seed), "eth0")
	}
	dir := f.TempDir()
	s := New(dir)
	path := s.legacyPath("c1")
	f.Fuzz(func(t *testing.T, data []byte, ifName string) {
		if ifName == "" {
			ifName = "eth0" // DEL always has CNI_IFNAME
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		atts, err := s.LoadLegacy("c1", ifName)
		again, errAgain := s.LoadLegacy("c1", ifName)
		if diff := cmp.Diff(atts, again); diff != "" || (err == nil) != (errAgain == nil) {
			t.Fatalf("LoadLegacy is not deterministic: %v then %v (-first +second):\n%s", err, errAgain, diff)
		}
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != path || atts != nil {
				t.Fatalf("refused with %v (%T) and %d attachments, want a *CorruptError naming %s alone", err, err, len(atts), path)
			}
			return
		}
		var list []json.RawMessage
		if err := json.Unmarshal(data, &list); err != nil {
			t.Fatalf("accepted a cache that is not a JSON list: %v", err)
		}
		if len(atts) != len(list) {
			t.Fatalf("%d attachments from %d delegates", len(atts), len(list))
		}
		for i, a := range atts {
			checkLegacyAttachment(t, i, a, ifName)
		}
	})
}

// checkLegacyAttachment fails unless attachment i is one DEL can run.
func checkLegacyAttachment(t *testing.T, i int, a podnet.Attachment, ifName string) {
	t.Helper()
	if a.IfName == "" || len(a.Config) == 0 {
		t.Fatalf("attachment %d has no interface name or configuration: %+v", i, a)
	}
	if a.Default != (i == 0) || (i == 0 && a.IfName != ifName) {
		t.Fatalf("attachment %d: default %v, interface %q; only the first is the default, on %q", i, a.Default, a.IfName, ifName)
	}
	for k, v := range a.CapabilityArgs {
		if !slices.Contains([]string{"mac", "infinibandGUID", "deviceID", "ips"}, k) || !json.Valid(v) {
			t.Fatalf("attachment %d: capability argument %q = %s", i, k, v)
		}
	}
}
