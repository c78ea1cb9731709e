package cniconf

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecode(t *testing.T) {
	obj, err := Decode([]byte(`{"name":"a","n":12345678901234567890}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(obj["n"]); got != "12345678901234567890" {
		t.Errorf("n = %s, want its digits unchanged", got)
	}
	for _, in := range []string{`[1]`, `null`, `"x"`, `{`, ``} {
		if _, err := Decode([]byte(in)); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
			t.Errorf("Decode(%q) error = %v, want one saying it is not a JSON object", in, err)
		}
	}
}

func TestString(t *testing.T) {
	obj := map[string]json.RawMessage{"s": json.RawMessage(`"v"`), "n": json.RawMessage(`1`), "z": json.RawMessage(`null`)}
	for key, want := range map[string]string{"s": "v", "n": "", "z": "", "missing": ""} {
		if got := String(obj, key); got != want {
			t.Errorf("String(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestVersion(t *testing.T) {
	tests := map[string]string{
		`{"cniVersion":"0.4.0","plugins":[{"cniVersion":"1.0.0"}]}`: "0.4.0",
		`{"CNIVersion":"0.3.1"}`:                                    "0.3.1",
		`{"name":"x"}`:                                              "",
		`{"cniVersion":1}`:                                          "",
		`not json`:                                                  "",
		`["x"]`:                                                     "",
	}
	for in, want := range tests {
		if got := Version([]byte(in)); got != want {
			t.Errorf("Version(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	defaults := map[string]string{"name": "net", "cniVersion": "1.0.0"}
	tests := []struct{ name, in, want string }{
		{"both missing", `{"type":"bridge","mtu":12345678901234567890}`,
			`{"cniVersion":"1.0.0","mtu":12345678901234567890,"name":"net","type":"bridge"}`},
		{"empty and not a string", `{"name":"","cniVersion":1,"type":"bridge"}`,
			`{"cniVersion":"1.0.0","name":"net","type":"bridge"}`},
		{"both set: the same bytes", "{ \"name\": \"own\", \"cniVersion\": \"0.3.1\" }", "{ \"name\": \"own\", \"cniVersion\": \"0.3.1\" }"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := WithDefaults([]byte(tc.in), defaults)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if got, _ := WithDefaults([]byte(`{"type":"x"}`), map[string]string{"name": ""}); string(got) != `{"type":"x"}` {
		t.Errorf("an empty default changed the configuration: %s", got)
	}
	if _, err := WithDefaults([]byte(`null`), defaults); err == nil {
		t.Error("no error for null")
	}
}

func TestSetString(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"keeps formatting and nested versions", "{\n  \"cniVersion\" :  \"0.3.1\",\n  \"plugins\": [{\"cniVersion\":\"0.3.1\"}]\n}\n",
			"{\n  \"cniVersion\" :  \"1.0.0\",\n  \"plugins\": [{\"cniVersion\":\"0.3.1\"}]\n}\n"},
		{"not a string before", `{"name":"a","cniVersion":1}`, `{"name":"a","cniVersion":"1.0.0"}`},
		{"missing", ` {"name":"a"}`, ` {"cniVersion":"1.0.0","name":"a"}`},
		{"empty object", `{}`, `{"cniVersion":"1.0.0"}`},
		{"duplicate keys", `{"cniVersion":"0.1.0","x":{"cniVersion":"0"},"cniVersion":"0.2.0"}`,
			`{"cniVersion":"1.0.0","x":{"cniVersion":"0"},"cniVersion":"1.0.0"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SetString([]byte(tc.in), "cniVersion", "1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	if _, err := SetString([]byte(`[1]`), "cniVersion", "1.0.0"); err == nil {
		t.Error("no error for a non-object")
	}
}
