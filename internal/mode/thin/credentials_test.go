package thin

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/plugin"
)

// inClusterEnv is the environment a pod gets for the API server the fake plays.
func (a *countingAPI) inClusterEnv(t *testing.T) env {
	t.Helper()
	u, err := url.Parse(a.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return env{"KUBERNETES_SERVICE_HOST": u.Hostname(), "KUBERNETES_SERVICE_PORT": u.Port()}
}

// serviceAccount writes a ServiceAccount folder for the fake: its CA and token.
func (a *countingAPI) serviceAccount(t *testing.T, dir string) string {
	t.Helper()
	sa := filepath.Join(dir, "serviceaccount")
	if err := os.MkdirAll(sa, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(sa, "ca.crt"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw})))
	writeTestFile(t, filepath.Join(sa, "token"), "sa-token\n")
	return sa
}

// TestAddInCluster: without a kubeconfig, with the service variables set, the
// plugin reads the pod's ServiceAccount folder and talks to the service.
func TestAddInCluster(t *testing.T) {
	api := newCountingAPI(t)
	s := newSetup(t)
	e := cniEnv("ADD", "sb7")
	for k, v := range api.inClusterEnv(t) {
		e[k] = v
	}
	h := Handler{ServiceAccountDir: api.serviceAccount(t, s.dir)}
	if _, err := h.Handle(context.Background(), "ADD", s.conf(""), e.getenv); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	// Events go in the background, so they may come after the status patch;
	// every one has been sent when Handle returns.
	want := []string{"GET /api/v1/namespaces/team-a/pods/web", "PATCH /api/v1/namespaces/team-a/pods/web/status", "POST /api/v1/namespaces/team-a/events"}
	if diff := cmp.Diff(want, api.requests(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("API requests (-want +got):\n%s", diff)
	}
}

// TestAddCredentialErrorCodes: an ADD whose credentials cannot be used fails
// at the process boundary with code 11 (a file not written yet) or 7 (a file
// that is wrong, or a pod's ServiceAccount files missing), never 999, naming
// the file; no delegate runs and no request is made.
func TestAddCredentialErrorCodes(t *testing.T) {
	api := newCountingAPI(t)
	edit := func(t *testing.T, dir, old, new string) string {
		kc := api.kubeconfig(t, dir)
		data, err := os.ReadFile(kc)
		if err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, kc, strings.Replace(string(data), old, new, 1))
		return kc
	}
	tests := []struct {
		name string
		// setup returns the kubeconfig ("" for none), more environment, the
		// ServiceAccount folder, and the file the error must name.
		setup    func(t *testing.T, dir string) (kubeconfig string, e env, saDir, file string)
		wantCode uint
	}{
		{
			name: "kubeconfig missing",
			setup: func(_ *testing.T, dir string) (string, env, string, string) {
				return filepath.Join(dir, "none"), nil, "", filepath.Join(dir, "none")
			},
			wantCode: cnicode.TryAgainLater,
		},
		{
			name: "kubeconfig is a folder",
			setup: func(_ *testing.T, dir string) (string, env, string, string) {
				return dir, nil, "", dir
			},
			wantCode: cnicode.InvalidNetworkConfig,
		},
		{
			name: "kubeconfig names a missing user",
			setup: func(t *testing.T, dir string) (string, env, string, string) {
				kc := edit(t, dir, "user: u}", "user: nobody}")
				return kc, nil, "", kc
			},
			wantCode: cnicode.InvalidNetworkConfig,
		},
		{
			name: "token file missing",
			setup: func(t *testing.T, dir string) (string, env, string, string) {
				return edit(t, dir, "{token: t}", "{tokenFile: token}"), nil, "", filepath.Join(dir, "token")
			},
			wantCode: cnicode.TryAgainLater,
		},
		{
			name: "in cluster, no ServiceAccount folder",
			setup: func(t *testing.T, dir string) (string, env, string, string) {
				sa := filepath.Join(dir, "serviceaccount")
				return "", api.inClusterEnv(t), sa, filepath.Join(sa, "ca.crt")
			},
			wantCode: cnicode.InvalidNetworkConfig,
		},
		{
			name: "in cluster, no token",
			setup: func(t *testing.T, dir string) (string, env, string, string) {
				sa := api.serviceAccount(t, dir)
				if err := os.Remove(filepath.Join(sa, "token")); err != nil {
					t.Fatal(err)
				}
				return "", api.inClusterEnv(t), sa, filepath.Join(sa, "token")
			},
			wantCode: cnicode.InvalidNetworkConfig,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			kc, extraEnv, saDir, file := tt.setup(t, s.dir)
			e := cniEnv("ADD", "sb6")
			for k, v := range extraEnv {
				e[k] = v
			}
			extra := ""
			if kc != "" {
				extra = fmt.Sprintf(`,"kubeconfig":%q`, kc)
			}
			before := len(api.requests())
			_, err := (Handler{ServiceAccountDir: saDir}).Handle(context.Background(), "ADD", s.conf(extra), e.getenv)
			if err == nil {
				t.Fatal("ADD succeeded")
			}
			ce := plugin.AsCNIError(err)
			if ce.Code != tt.wantCode {
				t.Errorf("CNI code %d, want %d: %s", ce.Code, tt.wantCode, ce.Msg)
			}
			if !strings.Contains(ce.Msg, file) {
				t.Errorf("message %q does not name %s", ce.Msg, file)
			}
			if got := s.invocations(t); len(got) != 0 {
				t.Errorf("delegates ran: %v", got)
			}
			if reqs := api.requests()[before:]; len(reqs) != 0 {
				t.Errorf("requests to the API server: %v", reqs)
			}
		})
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
