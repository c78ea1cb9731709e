package config

import "testing"

func TestDelegateIsList(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    bool
		wantErr string
	}{
		{name: "conf", raw: `{"cniVersion":"1.0.0","name":"x","type":"bridge"}`},
		{name: "conflist", raw: `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"ptp"},{"type":"portmap"}]}`, want: true},
		{name: "type wins over plugins", raw: `{"type":"bridge","plugins":[{"type":"ptp"}]}`},
		{name: "empty type with plugins", raw: `{"type":"","plugins":[{"type":"ptp"}]}`, want: true},
		{name: "neither", raw: `{"name":"x"}`, wantErr: `cni config has neither "type" nor a non-empty "plugins"`},
		{name: "empty plugins", raw: `{"plugins":[]}`, wantErr: `cni config has neither "type" nor a non-empty "plugins"`},
		{name: "null", raw: `null`, wantErr: `cni config has neither "type" nor a non-empty "plugins"`},
		{name: "first plugin without type", raw: `{"plugins":[{"name":"p"},{"type":"ptp"}]}`, wantErr: `cni config list: plugin 0 has no "type"`},
		{name: "first plugin not object", raw: `{"plugins":["ptp"]}`, wantErr: `cni config list: plugin 0 has no "type"`},
		{name: "type not string", raw: `{"type":1}`, wantErr: `cni config: "type" is a JSON number, not a string`},
		{name: "plugins not array", raw: `{"plugins":{}}`, wantErr: `cni config: "plugins" is a JSON object, not an array`},
		{name: "not object", raw: `"bridge"`, wantErr: `cni config is not a JSON object`},
		{name: "not JSON", raw: `{`, wantErr: `cni config is not a JSON object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DelegateIsList([]byte(tt.raw))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("DelegateIsList(%s) error = %v\nwant %s", tt.raw, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DelegateIsList(%s): %v", tt.raw, err)
			}
			if got != tt.want {
				t.Errorf("DelegateIsList(%s) = %t, want %t", tt.raw, got, tt.want)
			}
		})
	}
}

// TestValidatePluginType keeps a NAD from naming a binary outside the plugin
// folders (CVE-2021-20206).
func TestValidatePluginType(t *testing.T) {
	for typ, ok := range map[string]bool{
		"bridge": true, "host-local": true, "sriov_cni": true, "": false, ".": false, "..": false,
		"../../sbin/reboot": false, "/bin/true": false, `a\b`: false, "a\x00b": false,
	} {
		if err := ValidatePluginType(typ); (err == nil) != ok {
			t.Errorf("ValidatePluginType(%q) = %v, want ok=%v", typ, err, ok)
		}
	}
	for _, conf := range []string{
		`{"type":"../x"}`,
		`{"plugins":[{"type":"bridge"},{"type":"/usr/bin/evil"}]}`,
	} {
		if _, err := DelegateIsList([]byte(conf)); err == nil {
			t.Errorf("DelegateIsList(%s) accepted a path as plugin type", conf)
		}
	}
}
