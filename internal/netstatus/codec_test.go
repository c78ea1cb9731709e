package netstatus

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fullEntry uses every field, so that a round trip proves every key is
// written and read back.
var fullEntry = Entry{
	Name:      "ns1/sriov-a",
	Interface: "net1",
	IPs:       []string{"10.56.217.171", "fd00::171"},
	Mac:       "ba:a5:bb:4c:aa:1d",
	Mtu:       1500,
	DNS: &DNS{
		Nameservers: []string{"10.56.0.10"},
		Domain:      "example.com",
		Search:      []string{"example.com"},
		Options:     []string{"ndots:2"},
	},
	DeviceInfo:   json.RawMessage(`{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:18:02.5"}}`),
	Gateway:      []string{"10.56.217.1"},
	DefaultRoute: []string{"10.56.217.1"},
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry
		want    []Entry
	}{
		{name: "nil list", entries: nil, want: []Entry{}},
		{name: "empty list", entries: []Entry{}, want: []Entry{}},
		{
			name:    "R-5.3.5 default network only",
			entries: []Entry{{Name: "cluster-net", Interface: "eth0", IPs: []string{"10.244.0.5"}, Default: true}},
			want:    []Entry{{Name: "cluster-net", Interface: "eth0", IPs: []string{"10.244.0.5"}, Default: true}},
		},
		{
			name: "R-5.3 default and secondary with every field",
			entries: []Entry{
				{Name: "cluster-net", Interface: "eth0", Default: true},
				fullEntry,
			},
			want: []Entry{
				{Name: "cluster-net", Interface: "eth0", Default: true},
				fullEntry,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			value, err := Encode(tc.entries)
			if err != nil {
				t.Fatalf("Encode() error = %v", err)
			}
			if strings.Contains(value, "\n") {
				t.Errorf("Encode() = %q, want a single line", value)
			}
			got, err := Decode(value)
			if err != nil {
				t.Fatalf("Decode(%q) error = %v", value, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decode(Encode()) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry
		want    string
		wantErr bool
	}{
		{name: "nil list is an empty JSON list", entries: nil, want: `[]`},
		{
			name:    "R-5.3.5 default false written explicitly",
			entries: []Entry{{Name: "ns1/net-a", Interface: "net1"}},
			want:    `[{"name":"ns1/net-a","interface":"net1","default":false}]`,
		},
		{
			name:    "R-5.3.5 default true",
			entries: []Entry{{Name: "cluster-net", Interface: "eth0", Default: true}},
			want:    `[{"name":"cluster-net","interface":"eth0","default":true}]`,
		},
		{
			name: "R-5.3.7 device-info compacted",
			entries: []Entry{{
				Name:       "ns1/net-b",
				DeviceInfo: json.RawMessage("{\n  \"type\": \"pci\"\n}"),
			}},
			want: `[{"name":"ns1/net-b","default":false,"device-info":{"type":"pci"}}]`,
		},
		{
			name:    "invalid device-info",
			entries: []Entry{{Name: "ns1/net-c", DeviceInfo: json.RawMessage(`{`)}},
			wantErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Encode(tc.entries)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Encode() error = %v, wantErr %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Encode() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeNonDefaultWritesDefaultFalse(t *testing.T) {
	entry, err := FromResult(nil, "ns1/net-a", "net1", false)
	if err != nil {
		t.Fatalf("FromResult() error = %v", err)
	}
	value, err := Encode([]Entry{entry})
	if err != nil {
		t.Fatalf("Encode() error = %v", err)
	}
	if !strings.Contains(value, `"default":false`) {
		t.Errorf("Encode() = %s, want it to contain \"default\":false (R-5.3.5)", value)
	}
}

// decodeCase is one case of TestDecode.
type decodeCase struct {
	name    string
	value   string
	want    []Entry
	wantErr bool
}

// decodeCases is the table of TestDecode.
var decodeCases = []decodeCase{
	{name: "empty value", value: "", want: []Entry{}},
	{name: "blank value", value: " \n\t", want: []Entry{}},
	{name: "JSON null", value: "null", want: []Entry{}},
	{name: "empty list", value: "[]", want: []Entry{}},
	{
		name: "indented value with unknown keys",
		value: `[
  {
    "name": "ns1/net-a",
    "interface": "net1",
    "ips": ["10.1.1.5"],
    "mac": "0a:00:00:00:00:01",
    "default": false,
    "dns": {},
    "future-key": 1
  }
]`,
		want: []Entry{{
			Name:      "ns1/net-a",
			Interface: "net1",
			IPs:       []string{"10.1.1.5"},
			Mac:       "0a:00:00:00:00:01",
			DNS:       &DNS{},
		}},
	},
	{name: "missing default key reads as false", value: `[{"name":"n"}]`, want: []Entry{{Name: "n"}}},
	{name: "truncated JSON", value: `[{"name":`, wantErr: true},
	{name: "object instead of list", value: `{"name":"n"}`, wantErr: true},
	{name: "wrong field type", value: `[{"name":"n","default":"yes"}]`, wantErr: true},
}

func TestDecode(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.value)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Decode() error = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				if !strings.Contains(err.Error(), Annotation) {
					t.Errorf("Decode() error = %q, want it to name %s", err, Annotation)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decode() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
