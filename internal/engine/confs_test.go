package engine

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/request"
)

// TestOnDiskClusterNetwork proves that the engine hands its Confs port to
// planning for every command that resolves the cluster network: ADD, STATUS
// and GC each run the configuration the port answers, for clusterNetwork given
// as a name in confDir and as a file path.
func TestOnDiskClusterNetwork(t *testing.T) {
	const (
		confDir = "/node/net.d"
		file    = confDir + "/10-disk.conflist"
		disk    = `{"cniVersion":"1.0.0","name":"disk-net","plugins":[{"type":"bridge"}]}`
	)
	for _, ref := range []string{"disk-net", file} {
		t.Run(ref, func(t *testing.T) {
			conf := testConf(t, "/node", "1.0.0", `,"clusterNetwork":`+quote(ref))
			conf.ConfDir = confDir
			del := &fakeDelegates{}
			e := newEngine(nil, del, conf)
			confsOf(e)[file] = disk

			if _, err := e.Add(t.Context(), newRequest(t, request.Add, podArgs), conf); err != nil {
				t.Fatalf("Add: %v", err)
			}
			if err := e.Status(t.Context(), statusRequest(t), conf); err != nil {
				t.Fatalf("Status: %v", err)
			}
			if err := e.GC(t.Context(), gcRequest(t), conf); err != nil {
				t.Fatalf("GC: %v", err)
			}
			if diff := cmp.Diff([]string{"ADD disk-net eth0", "STATUS disk-net "}, del.ops()); diff != "" {
				t.Errorf("delegate calls (-want +got):\n%s", diff)
			}
			if got := string(del.added[0].Config); got != disk {
				t.Errorf("ADD config %s, want the file's %s", got, disk)
			}
			if got := string(del.statusConfig); got != disk {
				t.Errorf("STATUS config %s, want the file's %s", got, disk)
			}
			if got := string(del.gcConfig["disk-net"]); got != disk {
				t.Errorf("GC config %s, want the file's %s", got, disk)
			}
		})
	}
}
