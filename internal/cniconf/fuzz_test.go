package cniconf

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"testing"
	"unicode/utf8"
)

// confSeeds are CNI configurations as they sit in /etc/cni/net.d, and broken
// ones.
var confSeeds = []string{
	`{"cniVersion":"0.3.1","name":"k8s-pod-network","plugins":[{"type":"calico","log_level":"info","datastore_type":"kubernetes",` +
		`"nodename":"node-1","mtu":1440,"ipam":{"type":"calico-ipam"},"policy":{"type":"k8s"},"kubernetes":{"kubeconfig":"/etc/cni/net.d/calico-kubeconfig"}},` +
		`{"type":"portmap","snat":true,"capabilities":{"portMappings":true}},{"type":"bandwidth","capabilities":{"bandwidth":true}}]}`,
	"{\n  \"name\": \"cbr0\",\n  \"cniVersion\": \"0.3.1\",\n  \"plugins\": [\n    {\n      \"type\": \"flannel\",\n      \"delegate\": {\n        \"hairpinMode\": true,\n        \"isDefaultGateway\": true\n      }\n    }\n  ]\n}\n",
	`{"cniVersion":"1.0.0","name":"macvlan-conf","type":"macvlan","master":"eth1","mode":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"10.1.1.0/24"}]]},"n":12345678901234567890}`,
	`{"name":"a","name":"b","cniVersion":1}`, `{ }`, `{"cni\u0056ersion":"x"}`, `  {"a":1}  `, `[]`, `null`, ``, `{`,
}

// FuzzSetString sets one top-level key of a configuration. Properties:
// SetString never panics and fails only for a configuration Decode refuses;
// its result is a JSON object whose key holds the value; every other key keeps
// its value's exact bytes; and setting the same value again changes nothing.
func FuzzSetString(f *testing.F) {
	for _, s := range confSeeds {
		f.Add([]byte(s), "cniVersion", "1.1.0")
	}
	f.Add([]byte(`{"name":"x"}`), "name", "\u2028<&>")
	f.Fuzz(func(t *testing.T, data []byte, key, value string) {
		if !utf8.ValidString(key) || !utf8.ValidString(value) {
			return // a key or value JSON cannot write as it is
		}
		before, decodeErr := Decode(data)
		out, err := SetString(data, key, value)
		if (err != nil) != (decodeErr != nil) {
			t.Fatalf("SetString error %v, Decode error %v; want both or neither", err, decodeErr)
		}
		if err != nil {
			return
		}
		after, err := Decode(out)
		if err != nil {
			t.Fatalf("SetString gave %q, which does not decode: %v", out, err)
		}
		if got := String(after, key); got != value {
			t.Fatalf("key %q holds %q after SetString(%q), output %s", key, got, value, out)
		}
		delete(before, key)
		delete(after, key)
		if !maps.EqualFunc(before, after, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
			t.Fatalf("SetString changed other keys: %s became %s", data, out)
		}
		again, err := SetString(out, key, value)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("setting %q again changed %s into %s (%v)", key, out, again, err)
		}
	})
}

// FuzzWithDefaults fills a key of a configuration. Properties: WithDefaults
// never panics and fails only for a configuration Decode refuses; a key that
// held a non-empty string keeps it and any other gets the default; every other
// key keeps its value, numbers to the last digit (re-encoding does compact the
// value's text and escape <, > and & in its strings, as json.Marshal does with
// every json.RawMessage); and a configuration that needs nothing comes back as
// the same bytes.
func FuzzWithDefaults(f *testing.F) {
	for _, s := range confSeeds {
		f.Add([]byte(s), "cniVersion", "0.4.0")
	}
	f.Add([]byte(`{"cniVersion":""}`), "cniVersion", "")
	f.Fuzz(func(t *testing.T, data []byte, key, value string) {
		if !utf8.ValidString(key) || !utf8.ValidString(value) {
			return
		}
		before, decodeErr := Decode(data)
		out, err := WithDefaults(data, map[string]string{key: value})
		if (err != nil) != (decodeErr != nil) {
			t.Fatalf("WithDefaults error %v, Decode error %v; want both or neither", err, decodeErr)
		}
		if err != nil {
			return
		}
		after, err := Decode(out)
		if err != nil {
			t.Fatalf("WithDefaults gave %q, which does not decode: %v", out, err)
		}
		had := String(before, key)
		want := had
		if had == "" && value != "" {
			want = value
		}
		if got := String(after, key); got != want {
			t.Fatalf("key %q holds %q, want %q (it held %q)", key, got, want, had)
		}
		if want == had && !bytes.Equal(out, data) {
			t.Fatalf("nothing to fill, yet %s became %s", data, out)
		}
		delete(before, key)
		delete(after, key)
		if !maps.EqualFunc(before, after, sameValue) {
			t.Fatalf("WithDefaults changed other keys: %s became %s", data, out)
		}
	})
}

// sameValue reports whether a and b hold the same JSON value, numbers compared
// by their digits.
func sameValue(a, b json.RawMessage) bool {
	value := func(m json.RawMessage) any {
		dec := json.NewDecoder(bytes.NewReader(m))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return "invalid:" + string(m)
		}
		return v
	}
	return reflect.DeepEqual(value(a), value(b))
}
