package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// maxValueLen bounds FieldError.Value, so that a rejected delegate does not put a
// whole CNI configuration into one log line.
const maxValueLen = 80

// decodeObject decodes the JSON object data into c, one top-level key at a time
// and in document order, so that every decode error, including those of our own
// UnmarshalJSON methods, can name the key it came from. Decoding one key at a
// time into the same struct has the same result as decoding the whole object:
// encoding/json also assigns keys in order, and the last of duplicate keys wins.
func decodeObject(data []byte, c any) error {
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		detail := "valid JSON"
		var se *json.SyntaxError
		if errors.As(err, &se) {
			detail = fmt.Sprintf("%s at byte %d", se, se.Offset)
		}
		return &FieldError{Value: shorten(string(data)), Allowed: "a JSON object (" + detail + ")"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return &FieldError{Value: shortenJSON(data), Allowed: "a JSON object"}
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return &FieldError{Value: shortenJSON(data), Allowed: "a JSON object"}
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return &FieldError{Field: key, Value: shortenJSON(data), Allowed: "a JSON object"}
		}
		if err := decodeKey(key, raw, c); err != nil {
			return err
		}
	}
	return nil
}

// decodeKey decodes one top-level key into c, turning errors into a *FieldError.
// Keys that match no field are skipped, as encoding/json would ignore them.
func decodeKey(key string, raw json.RawMessage, c any) error {
	root := reflect.TypeOf(c).Elem()
	f, ok := fieldFor(root, key)
	if !ok {
		return nil
	}
	name := jsonName(f)
	k, _ := json.Marshal(key) // a string always encodes
	obj := make([]byte, 0, len(k)+len(raw)+3)
	obj = append(append(append(append(obj, '{'), k...), ':'), raw...)
	obj = append(obj, '}')
	err := json.Unmarshal(obj, c)
	if err == nil {
		return nil
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		out := *fe
		if out.Field == "" {
			out.Field = name
		}
		out.Value = shorten(out.Value)
		return &out
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return typeError(root, name, raw, te)
	}
	return &FieldError{Field: name, Value: shortenJSON(raw), Allowed: err.Error()}
}

// typeError describes a JSON value of the wrong type: the key path, the value's
// JSON text and the type the field wants, taken from the field's declaration
// rather than from the error, which only knows the innermost Go type.
func typeError(root reflect.Type, name string, raw json.RawMessage, te *json.UnmarshalTypeError) *FieldError {
	path := te.Field
	if path == "" {
		path = name
	}
	segs := strings.Split(path, ".")
	value := te.Value
	if v, ok := valueAt(raw, segs[1:]); ok {
		value = shortenJSON(v)
	}
	allowed := describe(te.Type)
	if t, ok := typeAt(root, segs); ok {
		allowed = describe(t)
	}
	if path == "delegates" {
		allowed = "an array of CNI configurations"
	}
	return &FieldError{Field: path, Value: value, Allowed: allowed}
}

// fieldFor returns t's field that the JSON key selects, matching without regard
// to case as encoding/json does.
func fieldFor(t reflect.Type, key string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if name := jsonName(f); name != "" && name != "-" && strings.EqualFold(name, key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonName returns the JSON key of a struct field.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// typeAt returns the type of root's field at the JSON key path segs.
func typeAt(root reflect.Type, segs []string) (reflect.Type, bool) {
	t := root
	for _, seg := range segs {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil, false
		}
		f, ok := fieldFor(t, seg)
		if !ok {
			return nil, false
		}
		t = f.Type
	}
	return t, true
}

// valueAt returns the JSON value at the key path segs inside raw.
func valueAt(raw json.RawMessage, segs []string) (json.RawMessage, bool) {
	for _, seg := range segs {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, false
		}
		found := false
		for k, v := range obj {
			if strings.EqualFold(k, seg) {
				raw, found = v, true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return raw, true
}

var (
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	durationType   = reflect.TypeFor[Duration]()
	commaListType  = reflect.TypeFor[CommaList]()
)

// describe names the JSON values that decode into t, for FieldError.Allowed.
func describe(t reflect.Type) string {
	switch t {
	case rawMessageType:
		return "any JSON value"
	case durationType:
		return allowedDuration
	case commaListType:
		return allowedCommaList
	}
	switch t.Kind() {
	case reflect.Pointer:
		return describe(t.Elem())
	case reflect.Slice:
		return "an array of " + plural(t.Elem())
	case reflect.Map:
		return "an object of " + plural(t.Elem())
	case reflect.Struct:
		return "an object"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	}
	return "a " + t.Kind().String()
}

// plural names the JSON values that decode into t, in the plural.
func plural(t reflect.Type) string {
	switch {
	case t == rawMessageType:
		return "JSON values"
	case t.Kind() == reflect.Bool:
		return "booleans"
	case t.Kind() == reflect.String:
		return "strings"
	case t.Kind() == reflect.Int:
		return "integers"
	}
	return "objects"
}

// shortenJSON returns the JSON text raw without insignificant white space,
// shortened for an error message.
func shortenJSON(raw []byte) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return shorten(string(raw))
	}
	return shorten(b.String())
}

// shorten cuts s to at most maxValueLen bytes, on a character boundary, marking
// the cut with "...".
func shorten(s string) string {
	if len(s) <= maxValueLen {
		return s
	}
	cut := maxValueLen - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
