package daemon

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/polynet-cni/polynet/internal/mode/socketapi"
)

// TestDelegateConfigIsNotSpliced: /delegate's configuration becomes an element
// of the plugin configuration's delegates through encoding/json, never pasted
// into JSON text, so a configuration that is not one JSON value cannot close
// the list and add keys of its own to the plugin configuration (here a
// binDir, which would choose the folders plugins are run from): it is
// refused as not JSON, and nothing runs.
func TestDelegateConfigIsNotSpliced(t *testing.T) {
	rx := &recordingExec{}
	d := &dispatcher{
		conf: parseDaemon(t, fmt.Sprintf(`{"multusConfigFile":"/etc/cni/net.d/00-multus.conf","cniDir":%q}`, filepath.Join(t.TempDir(), "cni"))),
		exec: rx, log: discardLog(),
	}
	env := map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "eeee", "CNI_NETNS": "/var/run/netns/eeee", "CNI_IFNAME": "net5"}
	for _, smuggled := range []string{
		`{"cniVersion":"0.4.0","name":"hot","type":"macvlan"}],"binDir":"relative/bin","x":[{}`,
		`{"cniVersion":"0.4.0","name":"hot","type":"macvlan"}],"namespaceIsolation":"yes","x":[{}`,
	} {
		_, err := d.Delegate(context.Background(), &socketapi.Request{Env: env, Config: []byte(smuggled)})
		if err == nil {
			t.Fatalf("/delegate ADD of %s succeeded", smuggled)
		}
		for _, key := range []string{"binDir", "namespaceIsolation"} {
			if strings.Contains(err.Error(), key) {
				t.Errorf("/delegate ADD of %s: %v; the configuration's text reached the plugin configuration as key %s", smuggled, err, key)
			}
		}
		if len(rx.calls) != 0 {
			t.Errorf("delegates ran: %+v", rx.calls)
		}
	}
}

// TestRunRefusesServedSocket: a second daemon configured with the socket
// folder of one that runs fails start-up, naming the socket and saying another
// daemon serves it, before it waits for its caches (the API here never lets
// them sync, so an error about syncing means the check came too late), and
// leaves the running daemon's socket in place and answering.
func TestRunRefusesServedSocket(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	conf := daemonConf(t, dir, newMiniAPI(t, true).kubeconfig(t, dir), `,"cacheSyncTimeout":"20s"`)
	first := socketapi.New(idle{}, socketapi.Options{SocketDir: conf.SocketDir, MaxInFlight: 1, MaxRequestBytes: 1 << 10, RequestTimeout: time.Second})
	if err := first.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = first.Serve() }()
	t.Cleanup(func() { _ = first.Shutdown(context.Background()) })
	first.SetReady(true)

	err := Run(t.Context(), conf, Options{NodeName: "node1", Log: discardLog()})
	socket := socketapi.SocketPath(conf.SocketDir)
	if err == nil || !strings.Contains(err.Error(), socket) || !strings.Contains(err.Error(), "another multus-daemon") {
		t.Errorf("Run: %v, want an error naming %s and another multus-daemon", err, socket)
	}
	c := socketapi.Client{Socket: socket, ConnectTimeout: time.Second, RequestTimeout: 5 * time.Second}
	if code, err := c.Get(context.Background(), socketapi.PathReadyz); err != nil || code != http.StatusOK {
		t.Errorf("the running daemon's socket after the refused start: /readyz %d %v, want 200", code, err)
	}
}
