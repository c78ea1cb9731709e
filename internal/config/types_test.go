package config

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDurationUnmarshal(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr *FieldError
	}{
		{in: `"10s"`, want: 10 * time.Second},
		{in: `"1m30s"`, want: 90 * time.Second},
		{in: `"250ms"`, want: 250 * time.Millisecond},
		{in: `"1h"`, want: time.Hour},
		{in: `"-5s"`, want: -5 * time.Second},
		{in: `"0"`, want: 0},
		{in: `null`, want: time.Minute},
		{in: `10`, wantErr: &FieldError{Value: "10", Allowed: allowedDuration}},
		{in: `1.5`, wantErr: &FieldError{Value: "1.5", Allowed: allowedDuration}},
		{in: `true`, wantErr: &FieldError{Value: "true", Allowed: allowedDuration}},
		{in: `{}`, wantErr: &FieldError{Value: "{}", Allowed: allowedDuration}},
		{in: `"10"`, wantErr: &FieldError{Value: "10", Allowed: allowedDuration}},
		{in: `"ten seconds"`, wantErr: &FieldError{Value: "ten seconds", Allowed: allowedDuration}},
		{in: `""`, wantErr: &FieldError{Value: "", Allowed: allowedDuration}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d := Duration{time.Minute}
			err := json.Unmarshal([]byte(tt.in), &d)
			if tt.wantErr != nil {
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("error %v is not a *FieldError", err)
				}
				if diff := cmp.Diff(tt.wantErr, fe); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if d.Duration != tt.want {
				t.Errorf("got %v, want %v", d.Duration, tt.want)
			}
		})
	}
}

func TestDurationMarshal(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{10 * time.Second, `"10s"`},
		{90 * time.Second, `"1m30s"`},
		{0, `"0s"`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got, err := json.Marshal(Duration{tt.d})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Marshal = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCommaListUnmarshal(t *testing.T) {
	tests := []struct {
		in      string
		want    CommaList
		wantErr bool
	}{
		{in: `"a,b"`, want: CommaList{"a", "b"}},
		{in: `" a , b ,"`, want: CommaList{"a", "b"}},
		{in: `""`, want: CommaList{}},
		{in: `["a", " b"]`, want: CommaList{"a", "b"}},
		{in: `[]`, want: CommaList{}},
		{in: `null`, want: CommaList{"unchanged"}},
		{in: `1`, wantErr: true},
		{in: `{"a":"b"}`, wantErr: true},
		{in: `[1]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			l := CommaList{"unchanged"}
			err := json.Unmarshal([]byte(tt.in), &l)
			if tt.wantErr {
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("error %v is not a *FieldError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if diff := cmp.Diff(tt.want, l); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestCommaListMarshal(t *testing.T) {
	got, err := json.Marshal(CommaList{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `"a,b"` {
		t.Errorf("Marshal = %s, want %q", got, "a,b")
	}
}

func TestFieldErrorError(t *testing.T) {
	tests := []struct {
		name string
		e    FieldError
		want string
	}{
		{"field", FieldError{Field: "logLevel", Value: "loud", Allowed: "one of debug, verbose, error, panic"},
			`plugin config: field "logLevel": "loud" is not allowed; want one of debug, verbose, error, panic`},
		{"no field", FieldError{Value: "[]", Allowed: "a JSON object"},
			`plugin config: "[]" is not allowed; want a JSON object`},
		{"empty value", FieldError{Field: "clusterNetwork", Allowed: "a cluster network (a NAD name, a configuration name, folder or file), or a non-empty delegates list"},
			`plugin config: field "clusterNetwork": missing or empty; want a cluster network (a NAD name, a configuration name, folder or file), or a non-empty delegates list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Error(); got != tt.want {
				t.Errorf("Error() = %s\nwant       %s", got, tt.want)
			}
		})
	}
}

func TestShorten(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"short", "short"},
		{string(make([]byte, 80)), string(make([]byte, 80))},
		{string(make([]byte, 81)), string(make([]byte, 77)) + "..."},
		// A three-byte character straddling the cut is dropped whole.
		{string(make([]byte, 76)) + "€€", string(make([]byte, 76)) + "..."},
	}
	for _, tt := range tests {
		if got := shorten(tt.in); got != tt.want {
			t.Errorf("shorten(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
