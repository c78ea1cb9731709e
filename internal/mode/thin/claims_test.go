package thin

import (
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/config"
)

// TestSlicesOneListPerPool: the devices of a claim's two drivers, in pools
// named alike, cost one list of the pools of that name; each driver gets its
// own slices.
func TestSlicesOneListPerPool(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"items":[
 {"spec":{"driver":"vf.example.com","pool":{"name":"node1","generation":1},"devices":[{"name":"vf-0"}]}},
 {"spec":{"driver":"gpu.example.com","pool":{"name":"node1","generation":2},"devices":[{"name":"gpu-0"}]}}]}`)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(dir, "kubeconfig")
	doc := fmt.Sprintf(`current-context: x
contexts: [{name: x, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: %q, certificate-authority: %q}}]
users: [{name: u, user: {token: t}}]
`, srv.URL, ca)
	if err := os.WriteFile(kc, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := config.ParsePlugin([]byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":"m","type":"multus","kubeconfig":%q,"clusterNetwork":"c"}`, kc)))
	if err != nil {
		t.Fatal(err)
	}
	k := newLazyKube(conf, func(string) string { return "" })
	for _, tt := range []struct{ driver, want string }{{"vf.example.com", "vf-0"}, {"gpu.example.com", "gpu-0"}, {"other.example.com", ""}} {
		got, err := k.Slices(t.Context(), tt.driver, "node1", nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range got {
			if s.Driver != tt.driver || s.Pool != "node1" {
				t.Errorf("driver %s got a slice of %s/%s", tt.driver, s.Driver, s.Pool)
			}
			for _, d := range s.Devices {
				names = append(names, d.Name)
			}
		}
		if want := []string{tt.want}; tt.want != "" && !cmp.Equal(want, names) || tt.want == "" && len(names) != 0 {
			t.Errorf("driver %s: devices %v, want %q", tt.driver, names, tt.want)
		}
	}
	if diff := cmp.Diff([]string{"/apis/resource.k8s.io/v1/resourceslices?fieldSelector=spec.pool.name%3Dnode1"}, queries); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}
