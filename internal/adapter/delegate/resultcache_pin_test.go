package delegate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// libcniModule is the module whose private cache format resultcache.go writes.
const libcniModule = "github.com/containernetworking/cni"

// TestLibcniCacheFormatPin fails when the build selects another libcni than the
// one RewriteDefaultRoutes was verified against (CacheFormatLibcni). The
// version comes from the module graph at test time (`go list -m`, which
// honours replace directives): a test binary carries no dependency list in its
// build information (runtime/debug.ReadBuildInfo returns no Deps under go test),
// so it cannot tell by itself.
func TestLibcniCacheFormatPin(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-json", libcniModule).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		t.Fatalf("go list -m %s: %v", libcniModule, err)
	}
	var mod struct {
		Version string
		Replace *struct{ Path, Version string }
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatalf("go list -m output %s: %v", out, err)
	}
	got := mod.Version
	if mod.Replace != nil {
		got = mod.Replace.Path + "@" + mod.Replace.Version
		if mod.Replace.Path == libcniModule {
			got = mod.Replace.Version
		}
	}
	if got != CacheFormatLibcni {
		t.Fatalf("libcni is %s, the cache format test was verified against %s: re-verify resultcache.go against libcni's cache code and update this pin (CacheFormatLibcni)", got, CacheFormatLibcni)
	}
}

// invocation is one plugin run seen by fakeExec.
type invocation struct {
	command, plugin string
	stdin           []byte
}

// fakeExec plays the plugins of a chain: on ADD, "first" answers result (in the
// configuration's version) and any other plugin answers the prevResult it got,
// as a chained plugin does; CHECK and DEL succeed. It keeps every invocation.
type fakeExec struct {
	result *current.Result
	mu     sync.Mutex
	runs   []invocation
}

func (f *fakeExec) ExecPlugin(_ context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	command := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "CNI_COMMAND="); ok {
			command = v
		}
	}
	plugin := strings.TrimPrefix(pluginPath, "/fake/")
	f.mu.Lock()
	f.runs = append(f.runs, invocation{command: command, plugin: plugin, stdin: stdin})
	f.mu.Unlock()
	if command != "ADD" {
		return nil, nil
	}
	var conf struct {
		CNIVersion string          `json:"cniVersion"`
		PrevResult json.RawMessage `json:"prevResult"`
	}
	if err := json.Unmarshal(stdin, &conf); err != nil {
		return nil, err
	}
	if plugin != "first" {
		return conf.PrevResult, nil
	}
	res, err := f.result.GetAsVersion(conf.CNIVersion)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

func (*fakeExec) FindInPath(plugin string, _ []string) (string, error) {
	return "/fake/" + plugin, nil
}

func (*fakeExec) Decode(data []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(data)
}

// of returns the stdin of each run of command, in order.
func (f *fakeExec) of(command string) []invocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []invocation
	for _, r := range f.runs {
		if r.command == command {
			out = append(out, r)
		}
	}
	return out
}

// routeSet renders a result's routes as sorted "dst via gw" strings: results of
// 0.1.0 and 0.2.0 split routes by family, so order is not compared.
func routeSet(t *testing.T, res types.Result) []string {
	t.Helper()
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		t.Fatalf("converting %v: %v", res, err)
	}
	out := []string{}
	for _, r := range cur.Routes {
		out = append(out, r.Dst.String()+" via "+r.GW.String())
	}
	slices.Sort(out)
	return out
}

// prevResultRoutes returns the routes of the prevResult in a plugin's stdin, or
// nil when it has none.
func prevResultRoutes(t *testing.T, stdin []byte) []string {
	t.Helper()
	conf := &types.PluginConf{}
	if err := json.Unmarshal(stdin, conf); err != nil {
		t.Fatalf("plugin stdin %s: %v", stdin, err)
	}
	if conf.RawPrevResult == nil {
		return nil
	}
	if err := version.ParsePrevResult(conf); err != nil {
		t.Fatalf("prevResult of %s: %v", stdin, err)
	}
	return routeSet(t, conf.PrevResult)
}

// TestRewriteDefaultRoutesThroughLibcni proves the cache format end to end
// through libcni's own public functions, for every spec version: libcni's
// AddNetworkList writes the entry (not a copy of its format made by this test),
// RewriteDefaultRoutes finds it at the path libcni chose and edits it, and then
// libcni reads the edited routes back: GetNetworkListCachedResult returns them,
// and from 0.4.0 on every plugin of the chain gets them as prevResult on CHECK
// and on DEL (before 0.4.0 libcni sends DEL no prevResult and has no CHECK).
// The entry stays listed by GetCachedAttachments, which GC reads, and DEL
// removes it as libcni does.
func TestRewriteDefaultRoutesThroughLibcni(t *testing.T) {
	idx := 0
	added := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{{Name: "net1", Sandbox: cacheSandbox.NetNS}},
		IPs: []*current.IPConfig{
			{Interface: &idx, Address: mustCIDR(t, "10.0.0.5/24"), Gateway: net.ParseIP("10.0.0.1")},
			{Interface: &idx, Address: mustCIDR(t, "fd00::5/64"), Gateway: net.ParseIP("fd00::1")},
		},
		Routes: []*types.Route{
			{Dst: mustCIDR(t, "0.0.0.0/0"), GW: net.ParseIP("10.0.0.1")},
			{Dst: mustCIDR(t, "10.10.0.0/16"), GW: net.ParseIP("10.0.0.1")},
			{Dst: mustCIDR(t, "::/0"), GW: net.ParseIP("fd00::1")},
		},
	}
	// The IPv4 default moves to 10.1.1.1; the IPv6 one and the other route stay.
	want := []string{"0.0.0.0/0 via 10.1.1.1", "10.10.0.0/16 via 10.0.0.1", "::/0 via fd00::1"}
	for _, v := range []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			cacheDir := t.TempDir()
			fake := &fakeExec{result: added}
			r := &Runner{Path: []string{"/fake"}, CacheDir: cacheDir, Exec: fake}
			a := podnet.Attachment{
				Network: "ns1/mynet", IfName: "net1",
				CNIArgs: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "pod-1"}},
				Config:  []byte(`{"cniVersion":"` + v + `","name":"mynet","plugins":[{"type":"first"},{"type":"second"}]}`),
			}
			ctx := context.Background()
			if _, err := r.Add(ctx, cacheSandbox, a); err != nil {
				t.Fatalf("ADD: %v", err)
			}
			path, err := r.cacheFile(cacheSandbox, a)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("libcni did not write its cache where RewriteDefaultRoutes looks: %v", err)
			}
			if err := r.RewriteDefaultRoutes(cacheSandbox, a, []int{4}, []net.IP{gw4}); err != nil {
				t.Fatalf("RewriteDefaultRoutes: %v", err)
			}

			list, rt, err := r.prepare("check", cacheSandbox, a)
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Result(cacheSandbox, a)
			if err != nil || res == nil {
				t.Fatalf("Result (libcni's GetNetworkListCachedResult) after the edit: %v, %v", res, err)
			}
			if diff := cmp.Diff(want, routeSet(t, res)); diff != "" {
				t.Errorf("routes libcni reads back (-want +got):\n%s", diff)
			}
			_, cachedRT, err := r.cni().GetNetworkListCachedConfig(list, rt)
			if err != nil || cachedRT == nil || !cmp.Equal(cachedRT.Args, a.CNIArgs) {
				t.Errorf("GetNetworkListCachedConfig after the edit: %+v, %v; want the cached CNI_ARGS %v", cachedRT, err, a.CNIArgs)
			}
			cached, err := r.Cached()
			if err != nil || len(cached) != 1 || cached[0].IfName != "net1" || cached[0].ContainerID != cacheSandbox.ContainerID {
				t.Errorf("GetCachedAttachments after the edit: %+v, %v", cached, err)
			}

			modern, err := version.GreaterThanOrEqualTo(v, "0.4.0")
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Check(ctx, cacheSandbox, a); err != nil {
				t.Fatalf("CHECK: %v", err)
			}
			if err := r.Del(ctx, cacheSandbox, a); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			if res, err := r.Result(cacheSandbox, a); err == nil {
				t.Errorf("Result after DEL: %v, want an error: DEL removes the cached result", res)
			}
			checks, dels := fake.of("CHECK"), fake.of("DEL")
			if !modern {
				if len(checks) != 0 {
					t.Errorf("%d CHECK runs for %s, which has no CHECK", len(checks), v)
				}
				for _, d := range dels {
					if got := prevResultRoutes(t, d.stdin); got != nil {
						t.Errorf("DEL of %s got a prevResult %v; libcni sends none before 0.4.0", d.plugin, got)
					}
				}
			} else {
				if len(checks) != 2 || len(dels) != 2 {
					t.Fatalf("%d CHECK and %d DEL runs, want 2 each (one per plugin)", len(checks), len(dels))
				}
				for _, run := range append(checks, dels...) {
					if diff := cmp.Diff(want, prevResultRoutes(t, run.stdin)); diff != "" {
						t.Errorf("%s of %s: prevResult routes (-want +got):\n%s", run.command, run.plugin, diff)
					}
				}
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cache entry after DEL: %v, want it removed by libcni", err)
			}
		})
	}
}

func mustCIDR(t *testing.T, s string) net.IPNet {
	t.Helper()
	n, err := types.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return *n
}
