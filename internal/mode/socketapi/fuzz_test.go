package socketapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

// FuzzClientRequest builds the request the shim sends, from fuzzed CNI
// variables, stdin and interface attributes, encodes it as Client.Do does and
// decodes it as the server does. Property: the server reads exactly what the
// client sent, with the client's protocol version (empty and absent lists being
// the same). Strings are valid UTF-8: JSON cannot carry other bytes unchanged,
// which store's FuzzRecordTamper and the report of this work cover.
func FuzzClientRequest(f *testing.F) {
	f.Add("ADD", "c0ffee", "/var/run/netns/cni-1", "eth0", "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p",
		[]byte(`{"cniVersion":"1.0.0","name":"multus-cni-network","type":"multus-shim"}`), "10.1.1.1/24", "02:00:00:00:00:02",
		[]byte(`{"a":[1,{"b":null}],"big":12345678901234567890}`), false)
	f.Add("DEL", "", "", "net1", "", []byte(nil), "", "", []byte(`null`), true)
	f.Add("CHECK", "x", "", "", "", []byte{0, 0xff}, "", "", []byte(`{}`), false)
	f.Fuzz(func(t *testing.T, command, containerID, netns, ifName, args string, config []byte,
		ip, mac string, cniArgs []byte, versioned bool,
	) {
		req := &Request{
			Env: map[string]string{
				"CNI_COMMAND": valid(command), "CNI_CONTAINERID": valid(containerID), "CNI_NETNS": valid(netns),
				"CNI_IFNAME": valid(ifName), "CNI_ARGS": valid(args), "CNI_PATH": "/opt/cni/bin",
			},
			Config: config,
		}
		if versioned {
			req.ProtocolVersion = ProtocolVersion // else the client fills it in
		}
		var m map[string]any
		if json.Unmarshal(cniArgs, &m) == nil && m != nil || ip != "" || mac != "" {
			req.InterfaceAttributes = &InterfaceAttributes{MacRequest: valid(mac)}
			if ip != "" {
				req.InterfaceAttributes.IPRequest = []string{valid(ip)}
			}
			if m != nil {
				req.InterfaceAttributes.CNIArgs = &m
			}
		}
		sent := *req
		if sent.ProtocolVersion == 0 {
			sent.ProtocolVersion = ProtocolVersion
		}
		body, err := json.Marshal(&sent)
		if err != nil {
			t.Fatalf("the client cannot encode %+v: %v", sent, err)
		}
		got, cerr := decodeRequest(bytes.NewReader(body))
		if cerr != nil {
			t.Fatalf("the server refuses what the client sent (%v): %s", cerr, body)
		}
		if diff := cmp.Diff(&sent, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("the server read another request (-sent +read):\n%s\nbody: %s", diff, body)
		}
	})
}

// FuzzAnswerError reads whatever comes back from the socket with a status other
// than 200. Properties: it never panics and always gives a *types.Error; a CNI
// error object comes back as it was sent; anything else is an internal error
// that names the HTTP status and quotes at most maxQuotedBytes of the answer,
// cut between characters (so a valid UTF-8 answer gives a valid UTF-8 message).
func FuzzAnswerError(f *testing.F) {
	for _, seed := range []string{
		`{"cniVersion":"1.0.0","code":11,"msg":"multus-daemon is at its limit of 64 requests in flight; try again later"}`,
		`{"code":7,"msg":"plugin config: field \"logLevel\": \"loud\" is not allowed","details":"want one of debug"}` + "\n",
		"Internal Server Error\n", "<html><body>502 Bad Gateway</body></html>", strings.Repeat("é", 400), `{"code":0}`,
		`{"msg":"no code"}`, `null`, ``, "\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := answerError("500 Internal Server Error", data)
		var ce *types.Error
		if !errors.As(err, &ce) {
			t.Fatalf("answerError gave %v (%T), want a *types.Error", err, err)
		}
		var sent types.Error
		if json.Unmarshal(data, &sent) == nil && (sent.Code != 0 || sent.Msg != "") {
			if diff := cmp.Diff(&sent, ce); diff != "" {
				t.Fatalf("the daemon's CNI error changed (-sent +read):\n%s", diff)
			}
			return
		}
		if ce.Code != cnicode.Internal || !strings.HasPrefix(ce.Msg, "multus-daemon answered 500 Internal Server Error: ") {
			t.Fatalf("answer %q gave %+v, want an internal error naming the status", data, ce)
		}
		quoted := strings.TrimPrefix(ce.Msg, "multus-daemon answered 500 Internal Server Error: ")
		if len(quoted) > maxQuotedBytes+len("...") {
			t.Fatalf("quoted %d bytes of the answer, want at most %d", len(quoted), maxQuotedBytes)
		}
		if utf8.Valid(data) && !utf8.ValidString(quoted) {
			t.Fatalf("quoting cut a character: %q", quoted)
		}
	})
}

// valid returns s with every invalid UTF-8 byte replaced by U+FFFD, as a JSON
// decoder reads it.
func valid(s string) string {
	return string([]rune(s))
}
