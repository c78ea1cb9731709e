package confmgr

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// thinPlugin decodes a generated thin configuration into its plugin object.
func thinPlugin(path string) map[string]any { return shim(path) }

// TestRunThinFollowsPrimaryVersion: with no cniVersion of ours, the file's
// name and version follow the primary's, and the file of the other extension
// is removed when the primary crosses 1.0.0, so the runtime never loads a
// stale one.
func TestRunThinFollowsPrimaryVersion(t *testing.T) {
	e := newEnv(t)
	e.d.CNIVersion = ""
	p := filepath.Join(e.auto, "10-p.conflist")
	put(t, p, `{"cniVersion":"0.4.0","name":"p","plugins":[{"type":"bridge"}]}`)
	r := startOpts(t, Options{Daemon: e.d, Thin: &Thin{Kubeconfig: "/k"}})
	conf, list := filepath.Join(e.conf, "00-multus.conf"), filepath.Join(e.conf, "00-multus.conflist")
	eventually(t, "a thin .conf", func() bool { return thinPlugin(conf)["type"] == "multus" })

	put(t, p, `{"cniVersion":"1.1.0","name":"p","plugins":[{"type":"bridge"}]}`)
	eventually(t, "a .conflist in place of the .conf", func() bool {
		return thinPlugin(list)["kubeconfig"] == "/k" && !exists(conf)
	})
	if r.m.Path() != list {
		t.Errorf("Path() = %s, want %s", r.m.Path(), list)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if !exists(list) {
		t.Error("the file was removed on exit without removeConfigOnShutdown")
	}
}

// TestRunOnce returns as soon as the file is in place, and leaves it there.
func TestRunOnce(t *testing.T) {
	e := newEnv(t)
	put(t, filepath.Join(e.auto, "10-p.conf"), conf("bridge", "0.3.1"))
	r := startOpts(t, Options{Daemon: e.d, Once: true})
	if err := r.result(t); err != nil {
		t.Fatal(err)
	}
	if clusterNetwork(r.m.Path()) == "" {
		t.Errorf("Run returned without the file in place:\n%s", r.log)
	}
}

// TestRunRenamesPrimary moves the primary to .old once ours is written, keeps
// ours when no primary is left, and renames a primary written again after it
// was used.
func TestRunRenamesPrimary(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(e.auto, "10-p.conf")
	put(t, p, conf("bridge", "0.3.1"))
	r := startOpts(t, Options{Daemon: e.d, Thin: &Thin{}, RenamePrimary: true})
	eventually(t, "the primary renamed", func() bool { return exists(p+".old") && !exists(p) })
	if d, _ := thinPlugin(r.m.Path())["delegates"].([]any); len(d) != 1 {
		t.Fatalf("generated file has no delegate: %s", read(t, r.m.Path()))
	}
	os.Remove(p + ".old")
	put(t, p, conf("ptp", "0.3.1"))
	eventually(t, "the new primary used and renamed", func() bool {
		d, _ := thinPlugin(r.m.Path())["delegates"].([]any)
		first, _ := d[0].(map[string]any)
		return first["type"] == "ptp" && exists(p+".old") && !exists(p)
	})
	consistently(t, "ours kept with no primary left", 1500*time.Millisecond, func() bool { return exists(r.m.Path()) })
}
