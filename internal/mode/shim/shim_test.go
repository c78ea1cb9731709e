package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/mode/socketapi"
	"github.com/polynet-cni/polynet/internal/plugin"
)

// daemon is a fake multus-daemon: the real socket server with a dispatcher that
// records what it is sent and answers with a scripted result or error.
type daemon struct {
	mu       sync.Mutex
	got      []socketapi.Request
	delegate int // calls of /delegate, which the shim must never make
	result   json.RawMessage
	err      error
}

func (d *daemon) CNI(_ context.Context, r *socketapi.Request) (json.RawMessage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, *r)
	return d.result, d.err
}

func (d *daemon) Delegate(context.Context, *socketapi.Request) (json.RawMessage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.delegate++
	return nil, errors.New("the shim must not call /delegate")
}

func (d *daemon) requests() []socketapi.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]socketapi.Request(nil), d.got...)
}

// serve starts d on a socket in a temp folder and returns the folder, for the
// configuration's daemonSocketDir.
func serve(t *testing.T, d *daemon) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	s := socketapi.New(d, socketapi.Options{SocketDir: dir, MaxInFlight: 4, MaxRequestBytes: 1 << 20, RequestTimeout: 10 * time.Second})
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return dir
}

// env is a CNI environment for getenv.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// podEnv is the environment a runtime gives for command, with variables the
// shim must not forward.
func podEnv(command string) env {
	return env{
		"CNI_COMMAND":     command,
		"CNI_CONTAINERID": "abc123",
		"CNI_NETNS":       "/var/run/netns/pod",
		"CNI_IFNAME":      "eth0",
		"CNI_ARGS":        "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod;K8S_POD_UID=uid-1",
		"CNI_PATH":        "/opt/cni/bin:/usr/libexec/cni",
		"HOME":            "/root",
		"KUBECONFIG":      "/etc/kubernetes/admin.conf",
	}
}

// result100 is the daemon's answer: a 1.0.0 result with an interface, an
// address, a route and DNS.
const result100 = `{"cniVersion":"1.0.0",
 "interfaces":[{"name":"eth0","mac":"02:00:00:00:00:01","sandbox":"/var/run/netns/pod"}],
 "ips":[{"interface":0,"address":"10.1.2.3/24","gateway":"10.1.2.1"}],
 "routes":[{"dst":"0.0.0.0/0","gw":"10.1.2.1"}],
 "dns":{"nameservers":["10.0.0.10"]}}`

// conf is a shim configuration for the daemon in socketDir.
func conf(cniVersion, socketDir string) []byte {
	return fmt.Appendf(nil, "{\n  \"cniVersion\": %q,\n  \"name\": \"multus-cni-network\",\n  \"type\": \"multus-shim\",\n  \"daemonSocketDir\": %q,\n  \"clusterNetwork\": \"/etc/cni/net.d/10-flannel.conflist\"\n}", cniVersion, socketDir)
}

// TestForwards: every command reaches /cni with the CNI variables that are set
// and nothing else of the environment, the stdin configuration byte for byte,
// and the protocol version; ADD prints the result, other commands print nothing.
func TestForwards(t *testing.T) {
	d := &daemon{result: json.RawMessage(result100)}
	dir := serve(t, d)
	stdin := conf("1.0.0", dir)
	for _, command := range []string{"ADD", "DEL", "CHECK", "STATUS", "GC"} {
		t.Run(command, func(t *testing.T) {
			e := podEnv(command)
			if command == "DEL" {
				delete(e, "CNI_NETNS") // the sandbox is gone: DEL may come without it
			}
			before := len(d.requests())
			out, err := Handler{}.Handle(context.Background(), command, stdin, e.get)
			if err != nil {
				t.Fatal(err)
			}
			got := d.requests()
			if len(got) != before+1 {
				t.Fatalf("daemon got %d requests, want 1", len(got)-before)
			}
			want := socketapi.Request{ProtocolVersion: socketapi.ProtocolVersion, Config: stdin, Env: map[string]string{}}
			for _, k := range cniVars {
				if v := e[k]; v != "" {
					want.Env[k] = v
				}
			}
			if diff := cmp.Diff(want, got[before]); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if command != "ADD" {
				if out != nil {
					t.Errorf("%s printed %s, want nothing", command, out)
				}
				return
			}
			if diff := cmp.Diff(decode(t, result100), decode(t, string(out))); diff != "" {
				t.Errorf("ADD output (-want +got):\n%s", diff)
			}
		})
	}
	if d.delegate != 0 {
		t.Errorf("the shim called /delegate %d times", d.delegate)
	}
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	return m
}

// TestResultVersion: the daemon's result is printed in the configuration's CNI
// version (0.1.0 when it names none), whatever version the daemon answered in.
func TestResultVersion(t *testing.T) {
	results := map[string]string{
		"1.0.0": result100,
		"0.4.0": `{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/pod"}],
		  "ips":[{"version":"4","interface":0,"address":"10.1.2.3/24","gateway":"10.1.2.1"}],
		  "routes":[{"dst":"0.0.0.0/0","gw":"10.1.2.1"}],"dns":{"nameservers":["10.0.0.10"]}}`,
	}
	for answered, result := range results {
		d := &daemon{result: json.RawMessage(result)}
		dir := serve(t, d)
		for _, want := range []string{"", "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
			t.Run(answered+" as "+want, func(t *testing.T) {
				out, err := Handler{}.Handle(context.Background(), "ADD", conf(want, dir), podEnv("ADD").get)
				if err != nil {
					t.Fatal(err)
				}
				if want == "" {
					want = "0.1.0"
				}
				var probe struct {
					CNIVersion string `json:"cniVersion"`
				}
				if err := json.Unmarshal(out, &probe); err != nil || probe.CNIVersion != want {
					t.Fatalf("printed cniVersion %q (%v), want %q: %s", probe.CNIVersion, err, want, out)
				}
				// Read back in its version and lifted to 1.0.0, the address,
				// gateway and DNS survive every version.
				res, err := version.NewResult(want, out)
				if err != nil {
					t.Fatalf("output is not a %s result: %v: %s", want, err, out)
				}
				lifted, err := res.GetAsVersion("1.0.0")
				if err != nil {
					t.Fatal(err)
				}
				r := lifted.(*types100.Result)
				if len(r.IPs) != 1 || r.IPs[0].Address.String() != "10.1.2.3/24" || r.IPs[0].Gateway.String() != "10.1.2.1" {
					t.Errorf("addresses %v, want 10.1.2.3/24 via 10.1.2.1", r.IPs)
				}
				if diff := cmp.Diff([]string{"10.0.0.10"}, r.DNS.Nameservers); diff != "" {
					t.Errorf("nameservers (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestDaemonMissing: with no daemon on the socket every command fails with CNI
// code 11, DEL included (a DEL reported done while nothing was torn down leaks
// addresses), and the error says which socket.
func TestDaemonMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing-here")
	for _, command := range []string{"ADD", "DEL", "CHECK", "STATUS", "GC"} {
		t.Run(command, func(t *testing.T) {
			_, err := Handler{}.Handle(context.Background(), command, conf("1.0.0", dir), podEnv(command).get)
			if ue := (*socketapi.UnreachableError)(nil); !errors.As(err, &ue) {
				t.Fatalf("%v, want *socketapi.UnreachableError", err)
			}
			if code := plugin.AsCNIError(err).Code; code != cnicode.TryAgainLater {
				t.Errorf("CNI code %d, want %d", code, cnicode.TryAgainLater)
			}
			if !strings.Contains(err.Error(), socketapi.SocketPath(dir)) {
				t.Errorf("%q does not name the socket", err)
			}
		})
	}
}

// TestDaemonError: the daemon's CNI error reaches the runtime with its code.
func TestDaemonError(t *testing.T) {
	dir := serve(t, &daemon{err: types.NewError(cnicode.NetworkNotFound, "network ns/blue not found", "")})
	_, err := Handler{}.Handle(context.Background(), "ADD", conf("1.0.0", dir), podEnv("ADD").get)
	ce := plugin.AsCNIError(err)
	if ce.Code != cnicode.NetworkNotFound || !strings.Contains(ce.Msg, "ns/blue") {
		t.Errorf("%v, want code %d from the daemon", err, cnicode.NetworkNotFound)
	}
}

// TestBadEnvironment: a request the CNI spec forbids is refused before the
// daemon is asked.
func TestBadEnvironment(t *testing.T) {
	d := &daemon{result: json.RawMessage(result100)}
	dir := serve(t, d)
	e := podEnv("ADD")
	delete(e, "CNI_NETNS")
	_, err := Handler{}.Handle(context.Background(), "ADD", conf("1.0.0", dir), e.get)
	if code := plugin.AsCNIError(err).Code; code != cnicode.InvalidEnvironment {
		t.Errorf("%v: code %d, want %d", err, code, cnicode.InvalidEnvironment)
	}
	if n := len(d.requests()); n != 0 {
		t.Errorf("the daemon was asked %d times", n)
	}
}

// TestConfigNeverInErrors: a configuration the shim cannot read is refused
// with code 7 and a message naming the key at fault, and no part of the
// configuration's text, which may hold credentials, is in the message.
func TestConfigNeverInErrors(t *testing.T) {
	const secret = "s3cr3t-7731"
	dir := serve(t, &daemon{result: json.RawMessage(result100)})
	tests := []struct {
		name      string
		stdin     string
		wantField string // "" when the document is at fault
	}{
		{"not JSON", `{"cniVersion":"1.0.0","token":"` + secret + `",`, ""},
		{"not an object", `["` + secret + `"]`, ""},
		{"empty", ``, ""},
		{"socket folder not a string", `{"daemonSocketDir":7731,"token":"` + secret + `"}`, "daemonSocketDir"},
		{"version not a string", `{"cniVersion":7731}`, "cniVersion"},
		{"unknown version", `{"cniVersion":"` + secret + `"}`, "cniVersion"},
		{"duration not a duration", `{"daemonConnectTimeout":"` + secret + `"}`, "daemonConnectTimeout"},
		{"duration a number", `{"daemonRequestTimeout":7731}`, "daemonRequestTimeout"},
		{"duration not positive", `{"daemonRequestTimeout":"-7731s"}`, "daemonRequestTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdin := tt.stdin
			if strings.HasPrefix(stdin, "{") && strings.HasSuffix(stdin, "}") {
				stdin = fmt.Sprintf(`{"daemonSocketDir":%q,`, dir) + stdin[1:] // keys later win
			}
			_, err := Handler{}.Handle(context.Background(), "ADD", []byte(stdin), podEnv("ADD").get)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := plugin.AsCNIError(err).Error()
			for _, leak := range []string{secret, "7731", "token"} {
				if strings.Contains(msg, leak) {
					t.Errorf("message quotes the configuration (%q): %s", leak, msg)
				}
			}
			var ce *ConfError
			if !errors.As(err, &ce) {
				t.Fatalf("%v (%T), want *ConfError", err, err)
			}
			if ce.Field != tt.wantField {
				t.Errorf("field %q, want %q", ce.Field, tt.wantField)
			}
			if tt.wantField != "" && !strings.Contains(msg, `"`+tt.wantField+`"`) {
				t.Errorf("message %q does not name %q", msg, tt.wantField)
			}
			if code := plugin.AsCNIError(err).Code; code != cnicode.InvalidNetworkConfig {
				t.Errorf("code %d, want %d", code, cnicode.InvalidNetworkConfig)
			}
		})
	}
}

// TestConfDefaults: keys left out take the defaults; given keys win.
func TestConfDefaults(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		want  Conf
	}{
		{"defaults", `{"name":"n"}`, Conf{CNIVersion: "0.1.0", DaemonSocketDir: "/run/multus/",
			DaemonConnectTimeout: dur(DefaultConnectTimeout), DaemonRequestTimeout: dur(DefaultRequestTimeout)}},
		{"given", `{"cniVersion":"0.3.1","daemonSocketDir":"/x","daemonConnectTimeout":"3s","daemonRequestTimeout":"1m","daemonSocketDirX":1}`,
			Conf{CNIVersion: "0.3.1", DaemonSocketDir: "/x", DaemonConnectTimeout: dur(3 * time.Second), DaemonRequestTimeout: dur(time.Minute)}},
		{"nulls", `{"daemonSocketDir":null,"daemonConnectTimeout":null}`, Conf{CNIVersion: "0.1.0", DaemonSocketDir: "/run/multus/",
			DaemonConnectTimeout: dur(DefaultConnectTimeout), DaemonRequestTimeout: dur(DefaultRequestTimeout)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConf([]byte(tt.stdin))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("conf (-want +got):\n%s", diff)
			}
		})
	}
}

func dur(d time.Duration) config.Duration { return config.Duration{Duration: d} }
