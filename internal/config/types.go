package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

// FieldError reports a configuration value we reject. It names the key, the
// value and what would have been accepted, because the person reading it is an
// administrator editing a file on a node, who needs all three to fix it.
type FieldError struct {
	// Field is the JSON key path, e.g. "logLevel", "delegates[1]",
	// "logOptions.maxSize"; empty when the whole document is at fault.
	Field string
	// Value is the offending value as text; JSON text when its type is wrong.
	Value string
	// Allowed says what is allowed, e.g. "one of debug, verbose, error, panic".
	Allowed string
	// Doc names the document: "" is the plugin configuration.
	Doc string
}

// Error returns, for example: plugin config: field "logLevel": "loud" is not
// allowed; want one of debug, verbose, error, panic.
func (e *FieldError) Error() string {
	where := "plugin config"
	if e.Doc != "" {
		where = e.Doc
	}
	if e.Field != "" {
		where += fmt.Sprintf(": field %q", e.Field)
	}
	if e.Value == "" {
		return fmt.Sprintf("%s: missing or empty; want %s", where, e.Allowed)
	}
	return fmt.Sprintf("%s: %q is not allowed; want %s", where, e.Value, e.Allowed)
}

// Duration is a time.Duration written in JSON as a Go duration string ("10s",
// "1m30s"). Bare numbers are rejected rather than guessed at: 10 could mean
// seconds to a person and nanoseconds to encoding/json.
type Duration struct{ time.Duration }

// allowedDuration describes the accepted duration syntax in errors.
const allowedDuration = `a duration string such as "10s" or "1m30s"`

// UnmarshalJSON decodes a duration string; null leaves the value unchanged.
// Errors are *FieldError without a Field, which the caller fills in.
func (d *Duration) UnmarshalJSON(data []byte) error {
	if bytes.Equal(data, []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return &FieldError{Value: string(data), Allowed: allowedDuration}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &FieldError{Value: s, Allowed: allowedDuration}
	}
	d.Duration = v
	return nil
}

// MarshalJSON encodes the duration as a string that UnmarshalJSON accepts.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.String())
}

// CommaList is a list of names written in JSON as one comma-separated string,
// upstream's format for globalNamespaces. A JSON array of strings is accepted as
// well, as the natural way to write a list. Items are trimmed of white space and
// empty items are dropped, so "a, b," means [a b].
type CommaList []string

// allowedCommaList describes the accepted forms of a CommaList in errors.
const allowedCommaList = "a comma-separated string or an array of strings"

// UnmarshalJSON decodes a comma-separated string or an array of strings; null
// leaves the value unchanged. Errors are *FieldError without a Field, which the
// caller fills in.
func (l *CommaList) UnmarshalJSON(data []byte) error {
	if bytes.Equal(data, []byte("null")) {
		return nil
	}
	var items []string
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		items = strings.Split(s, ",")
	} else if err := json.Unmarshal(data, &items); err != nil {
		return &FieldError{Value: string(data), Allowed: allowedCommaList}
	}
	list := CommaList{}
	for _, item := range items {
		if item = strings.TrimSpace(item); item != "" {
			list = append(list, item)
		}
	}
	*l = list
	return nil
}

// MarshalJSON encodes the list as one comma-separated string, so a configuration
// we re-encode is still understood by upstream Multus.
func (l CommaList) MarshalJSON() ([]byte, error) {
	return json.Marshal(strings.Join(l, ","))
}

// CNICode reports the CNI code of a bad configuration (7, invalid network
// configuration).
func (e *FieldError) CNICode() uint { return cnicode.InvalidNetworkConfig }
