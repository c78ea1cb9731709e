package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/polynet-cni/polynet/test/testbed"
)

// TestDelOfSandboxAttachedByUpstream: a node upgraded from upstream Multus still
// has pods that upstream attached, with upstream's cache file <cniDir>/<container>
// and its libcni results. Their DEL comes to us and must tear everything down as
// upstream would have: the real bridge + host-local cluster network releases its
// address, the secondary gets its DEL on net1, and the cache file goes.
func TestDelOfSandboxAttachedByUpstream(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		_, sb, netns := e.pod("pod-1", nil)
		cluster, _ := json.Marshal(e.clusterConf(v))
		sec := e.recorderConf(v, "sec", nil)
		// What upstream did at ADD: its delegates through libcni, cached in cniDir.
		upstream := testbed.NewRuntime([]string{e.bed.CNIPluginDir(), testbed.BinDir(t, "recorder")}, e.cniDir)
		if _, err := upstream.Add(e.ctx, cluster, sb); err != nil {
			t.Fatal(err)
		}
		secSb := sb
		secSb.IfName = "net1"
		if _, err := upstream.Add(e.ctx, []byte(sec), secSb); err != nil {
			t.Fatal(err)
		}
		cache, _ := json.Marshal([]map[string]any{
			{"Name": "cluster-net", "Bytes": cluster, "IsFilterV4Gateway": false},
			{"Name": e.namespace + "/sec", "Bytes": []byte(sec), "IsFilterV4Gateway": true},
		})
		legacy := filepath.Join(e.cniDir, sb.ContainerID)
		if err := os.WriteFile(legacy, cache, 0o600); err != nil {
			t.Fatal(err)
		}
		if got := ipamFiles(t, e.dataDir); got != 1 {
			t.Fatalf("%d addresses allocated by the upstream ADD, want 1", got)
		}

		e.del(e.multusConf(v, nil), sb)
		if got := ipamFiles(t, e.dataDir); got != 0 {
			t.Errorf("the upstream-attached address was not released")
		}
		if dels := e.recordsFor("DEL"); len(dels) != 1 || dels[0].Env["CNI_IFNAME"] != "net1" {
			t.Errorf("secondary DELs %+v, want one on net1", dels)
		}
		if got := links(t, netns); len(got) != 1 {
			t.Errorf("links left: %v", got)
		}
		if _, err := os.Stat(legacy); !os.IsNotExist(err) {
			t.Errorf("upstream's cache file survived the DEL")
		}
	})
}
