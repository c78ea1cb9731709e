package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/request"
)

type handlerFunc func(ctx context.Context, command string, stdin []byte, getenv func(string) string) ([]byte, error)

func (f handlerFunc) Handle(ctx context.Context, command string, stdin []byte, getenv func(string) string) ([]byte, error) {
	return f(ctx, command, stdin, getenv)
}

func run(t *testing.T, env map[string]string, stdin string, h Handler) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	p := Process{
		Getenv: func(k string) string { return env[k] },
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errOut,
	}
	code := Run(context.Background(), p, "about text", h)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	all := []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}
	tests := []struct {
		stdin string
		want  string
	}{
		{stdin: "", want: "1.1.0"},
		{stdin: "not json", want: "1.1.0"},
		{stdin: `{"cniVersion":"9.9.9"}`, want: "1.1.0"},
	}
	for _, v := range all {
		tests = append(tests, struct{ stdin, want string }{fmt.Sprintf(`{"cniVersion":%q}`, v), v})
	}
	for _, tt := range tests {
		t.Run(tt.stdin, func(t *testing.T) {
			code, out, _ := run(t, map[string]string{"CNI_COMMAND": "VERSION"}, tt.stdin, NotImplemented{"x"})
			if code != 0 {
				t.Fatalf("exit %d, output %s", code, out)
			}
			var got struct {
				CNIVersion        string   `json:"cniVersion"`
				SupportedVersions []string `json:"supportedVersions"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			if got.CNIVersion != tt.want {
				t.Errorf("cniVersion = %q, want %q", got.CNIVersion, tt.want)
			}
			if diff := cmp.Diff(all, got.SupportedVersions); diff != "" {
				t.Errorf("supportedVersions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name     string
		command  string
		handler  Handler
		wantCode uint
		wantMsg  string
	}{
		{
			name:     "unknown command",
			command:  "FROB",
			handler:  NotImplemented{"x"},
			wantCode: types.ErrInvalidEnvironmentVariables,
			wantMsg:  `unknown CNI_COMMAND "FROB"`,
		},
		{
			name:    "plain error is internal",
			command: request.Add,
			handler: handlerFunc(func(context.Context, string, []byte, func(string) string) ([]byte, error) {
				return nil, errors.New("boom")
			}),
			wantCode: types.ErrInternal,
			wantMsg:  "boom",
		},
		{
			name:    "wrapped CNI error keeps its code and gains context",
			command: request.Del,
			handler: handlerFunc(func(context.Context, string, []byte, func(string) string) ([]byte, error) {
				return nil, fmt.Errorf("pod ns/p network ns/n: %w", types.NewError(types.ErrTryAgainLater, "daemon down", "d"))
			}),
			wantCode: types.ErrTryAgainLater,
			wantMsg:  "pod ns/p network ns/n: daemon down",
		},
		{
			name:     "not implemented",
			command:  request.Check,
			handler:  NotImplemented{"multus"},
			wantCode: types.ErrInternal,
			wantMsg:  "multus: command CHECK is not implemented yet",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := run(t, map[string]string{"CNI_COMMAND": tt.command}, "{}", tt.handler)
			if code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			var e types.Error
			if err := json.Unmarshal([]byte(out), &e); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			if e.Code != tt.wantCode || !strings.Contains(e.Msg, tt.wantMsg) {
				t.Errorf("got code %d msg %q, want code %d msg containing %q", e.Code, e.Msg, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestRunPassesStdinAndPrintsResult(t *testing.T) {
	h := handlerFunc(func(_ context.Context, command string, stdin []byte, getenv func(string) string) ([]byte, error) {
		return []byte(command + " " + string(stdin) + " " + getenv("CNI_IFNAME")), nil
	})
	code, out, _ := run(t, map[string]string{"CNI_COMMAND": "ADD", "CNI_IFNAME": "eth0"}, `{"a":1}`, h)
	if code != 0 || out != `ADD {"a":1} eth0` {
		t.Fatalf("exit %d output %q", code, out)
	}
}

func TestNoCommandPrintsAbout(t *testing.T) {
	code, out, errOut := run(t, map[string]string{}, "", NotImplemented{"x"})
	if code != 0 || out != "" || !strings.Contains(errOut, "about text") || !strings.Contains(errOut, "0.1.0, 0.2.0") {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
	}
}
