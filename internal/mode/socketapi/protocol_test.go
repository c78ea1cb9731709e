package socketapi

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzDecodeRequest: the daemon's request body is outside input. Decoding never
// panics; a body it accepts has a supported version and survives encoding and
// decoding again unchanged (empty and absent lists being the same), so what the dispatcher reads is what was meant.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"env":{"CNI_COMMAND":"ADD","CNI_IFNAME":"eth0"},"config":"eyJuYW1lIjoibiJ9"}`,
		`{"protocolVersion":1,"env":{"CNI_COMMAND":"DEL"},"config":null}`,
		`{"protocolVersion":2}`,
		`{"env":{},"config":"e30=","interfaceAttributes":{"ips":["10.1.1.1/24"],"mac":"02:00:00:00:00:02","cni-args":{"a":[1,{"b":null}]}}}`,
		`{"ENV":{"a":"b"},"Config":""}`,
		`[]`, `null`, ``, `{"config":"not base64"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, cerr := decodeRequest(bytes.NewReader(body))
		if cerr != nil {
			if req != nil {
				t.Fatalf("refused (%v) but returned a request", cerr)
			}
			return
		}
		if !slices.Contains(SupportedProtocolVersions, req.Version()) {
			t.Fatalf("accepted version %d", req.Version())
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("an accepted request does not encode: %v", err)
		}
		back, cerr := decodeRequest(bytes.NewReader(again))
		if cerr != nil {
			t.Fatalf("an accepted request, encoded, is refused: %v", cerr)
		}
		// omitempty drops an empty list or map: empty and absent mean the same.
		if diff := cmp.Diff(req, back, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("decode(encode(req)) differs (-first +second):\n%s", diff)
		}
	})
}

// TestVersion: an absent version is upstream's, 1.
func TestVersion(t *testing.T) {
	for _, tt := range []struct{ sent, want int }{{0, 1}, {1, 1}, {2, 2}, {-3, -3}} {
		if got := (&Request{ProtocolVersion: tt.sent}).Version(); got != tt.want {
			t.Errorf("Version() of %d = %d, want %d", tt.sent, got, tt.want)
		}
	}
}
