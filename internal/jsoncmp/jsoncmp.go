// Package jsoncmp holds the go-cmp options our tests use to compare values that
// carry JSON: a json.RawMessage is compared as JSON text without insignificant
// white space (json.Marshal compacts one, so `{"a": 1}` reads back as
// `{"a":1}`, which a plugin reads the same), and an empty list or map is the
// same as none (omitempty drops both). Tests only: nothing in a binary links it.
package jsoncmp

import (
	"bytes"
	"encoding/json"
	"reflect"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Equivalent compares as a plugin reading the JSON would.
var Equivalent = cmp.Options{
	cmp.FilterPath(isRaw, cmp.Transformer("compact", compact)),
	cmp.FilterPath(func(p cmp.Path) bool { return !isRaw(p) }, cmpopts.EquateEmpty()),
}

func isRaw(p cmp.Path) bool { return p.Last().Type() == reflect.TypeFor[json.RawMessage]() }

func compact(m json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, m) != nil {
		return "invalid:" + string(m)
	}
	return b.String()
}
