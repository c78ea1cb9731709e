// Package cniconf reads and sets the top-level keys of a CNI configuration, a
// single conf or a conflist, as JSON. Values are handled as their JSON text, so
// a key that is not touched keeps its bytes (large integers keep their digits),
// and a configuration that needs no change comes back as the same slice. It is
// the one place that knows how to do this for the planner, the engine, the
// daemon and the configuration manager; it does no I/O.
package cniconf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Decode returns the top-level keys of a configuration, which must be a JSON
// object, each with its value's JSON text.
func Decode(data []byte) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if obj == nil {
		return nil, errors.New("not a JSON object: null")
	}
	return obj, nil
}

// String is the top-level key's value when it is a JSON string, else "".
func String(obj map[string]json.RawMessage, key string) string {
	var s string
	if json.Unmarshal(obj[key], &s) != nil {
		return ""
	}
	return s
}

// Version is the configuration's top-level cniVersion, "" when it has none or
// is not a JSON object. Like encoding/json and libcni, it matches the key
// without regard to case. Unlike libcni's version decoder it does not turn a
// missing version into 0.1.0: callers differ in what they default it to.
func Version(data []byte) string {
	var c struct {
		CNIVersion string `json:"cniVersion"`
	}
	_ = json.Unmarshal(data, &c) // not a configuration: no version
	return c.CNIVersion
}

// WithDefaults sets each key of defaults whose top-level value is missing,
// empty or not a string; an empty default sets nothing. It returns data itself
// when nothing changes, else the configuration re-encoded (keys in sorted
// order, every other value's JSON text as it was).
func WithDefaults(data []byte, defaults map[string]string) ([]byte, error) {
	obj, err := Decode(data)
	if err != nil {
		return nil, err
	}
	changed := false
	for key, value := range defaults {
		if String(obj, key) == "" && value != "" {
			obj[key], _ = json.Marshal(value) // a string always encodes
			changed = true
		}
	}
	if !changed {
		return data, nil
	}
	return json.Marshal(obj)
}

// SetString sets the top-level key to the string value in place: the bytes of
// every existing value of that key are replaced (a duplicated key has several),
// or the key is inserted first in the object when it is absent. Every other byte
// stays, white space included, for files another component owns and may compare
// byte for byte.
func SetString(data []byte, key, value string) ([]byte, error) {
	quoted, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	obj, err := Decode(data)
	if err != nil {
		return nil, err
	}
	spans, open, err := valueSpans(data, key)
	if err != nil {
		return nil, err
	}
	if len(spans) == 0 {
		k, _ := json.Marshal(key) // a string always encodes
		sep := ","
		if len(obj) == 0 {
			sep = ""
		}
		insert := append(append(append(k, ':'), quoted...), sep...)
		return concat(data[:open+1], insert, data[open+1:]), nil
	}
	out := append([]byte(nil), data[:spans[0][0]]...)
	for i, s := range spans {
		out = append(out, quoted...)
		end := len(data)
		if i+1 < len(spans) {
			end = spans[i+1][0]
		}
		out = append(out, data[s[1]:end]...)
	}
	return out, nil
}

// valueSpans finds the byte ranges of the values of key at the top level of the
// JSON object data, and the offset of the object's opening brace.
func valueSpans(data []byte, key string) (spans [][2]int, open int, err error) {
	open = bytes.IndexByte(data, '{')
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // {
		return nil, 0, err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, 0, err
		}
		afterKey := int(dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, 0, err
		}
		if tok != key {
			continue
		}
		// Only white space and the colon separate a key from its value.
		start := afterKey + bytes.IndexByte(data[afterKey:], ':') + 1
		for start < len(data) && isSpace(data[start]) {
			start++
		}
		spans = append(spans, [2]int{start, int(dec.InputOffset())})
	}
	if _, err := dec.Token(); err != nil && err != io.EOF { // }
		return nil, 0, err
	}
	return spans, open, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
