package confmgr

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRunRegeneratesWhenPrimaryChanges(t *testing.T) {
	e := newEnv(t)
	a := filepath.Join(e.auto, "10-a.conflist")
	put(t, a, `{"cniVersion":"0.3.1","name":"a","plugins":[{"type":"bridge"}]}`)
	r := start(t, e.d, 0)
	eventually(t, "the file", func() bool { return clusterNetwork(r.m.Path()) == a })

	put(t, a, `{"cniVersion":"0.3.1","name":"a","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}`)
	eventually(t, "portMappings in the capabilities", func() bool {
		caps, _ := shim(r.m.Path())["capabilities"].(map[string]any)
		return caps["portMappings"] == true
	})

	first := filepath.Join(e.auto, "05-first.conf")
	put(t, first, conf("ptp", "0.3.1"))
	eventually(t, "the file sorting first", func() bool { return clusterNetwork(r.m.Path()) == first })

	os.Remove(first)
	eventually(t, "the next primary", func() bool { return clusterNetwork(r.m.Path()) == a })

	os.Remove(a)
	eventually(t, "a log that no primary is left", func() bool { return r.log.has(slog.LevelInfo, "keeping the last one generated") })
	if clusterNetwork(r.m.Path()) != a {
		t.Error("the last file was not kept when no primary was left")
	}
}

func TestRunRestoresOwnFile(t *testing.T) {
	e := newEnv(t)
	e.d.CNIConfigDir, e.conf = e.auto, e.auto
	primary := filepath.Join(e.auto, "10-a.conf")
	put(t, primary, conf("bridge", "0.3.1"))
	r := start(t, e.d, 0)
	path := r.m.Path()
	eventually(t, "the file", func() bool { return exists(path) })
	want := read(t, path)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the file restored after removal", func() bool { return exists(path) && read(t, path) == want })

	// Cilium's exclusive mode renames other CNI configurations away.
	if err := os.Rename(path, path+".cilium_bak"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the file restored after a rename", func() bool { return exists(path) && read(t, path) == want })
	if !r.log.has(slog.LevelWarn, "removed or renamed", path) {
		t.Errorf("no Warn about the restore: %q", r.log)
	}
	eventually(t, "3 writes", func() bool { return r.writes.Load() == 3 })
	if got := clusterNetwork(path); got != primary {
		t.Errorf("clusterNetwork %s after the rename, want %s", got, primary)
	}
}

func TestRunReadinessIndicator(t *testing.T) {
	e := newEnv(t)
	// The indicator's folder does not exist at first, as /run/<cni>/ before
	// the cluster network starts.
	indicator := filepath.Join(t.TempDir(), "cilium", "ready")
	e.d.ReadinessIndicatorFile = indicator
	put(t, filepath.Join(e.auto, "10-a.conf"), conf("bridge", "0.3.1"))
	r := start(t, e.d, 0)
	path := r.m.Path()
	consistently(t, "no file without the indicator", 300*time.Millisecond, func() bool { return !exists(path) })

	if err := os.MkdirAll(filepath.Dir(indicator), 0o755); err != nil {
		t.Fatal(err)
	}
	put(t, indicator, "")
	eventually(t, "the file once the indicator exists", func() bool { return exists(path) })

	os.Remove(indicator)
	eventually(t, "the file removed with the indicator", func() bool { return !exists(path) })

	put(t, indicator, "")
	eventually(t, "the file back with the indicator", func() bool { return exists(path) })
	select {
	case err := <-r.errc:
		r.errc <- err
		t.Fatalf("Run returned %v when the indicator went away", err)
	default:
	}
}

func TestRunReadinessIndicatorRemovesLeftover(t *testing.T) {
	e := newEnv(t)
	e.d.ReadinessIndicatorFile = filepath.Join(t.TempDir(), "ready")
	put(t, filepath.Join(e.auto, "10-a.conf"), conf("bridge", "0.3.1"))
	leftover := filepath.Join(e.conf, "00-multus.conf")
	put(t, leftover, "{}")
	start(t, e.d, 0)
	eventually(t, "the earlier daemon's file removed", func() bool { return !exists(leftover) })
}

func TestRunNoRewriteWhenUnchanged(t *testing.T) {
	e := newEnv(t)
	primary := filepath.Join(e.auto, "10-a.conf")
	put(t, primary, conf("bridge", "0.3.1"))
	r := start(t, e.d, 0)
	path := r.m.Path()
	eventually(t, "the first write", func() bool { return r.writes.Load() == 1 })
	before, _ := os.Stat(path)

	// Same content written again, unrelated files come and go: past a poll
	// interval, the file must not have been written again.
	put(t, primary, conf("bridge", "0.3.1"))
	put(t, filepath.Join(e.auto, "99-z.conf"), conf("ptp", "0.3.1"))
	put(t, filepath.Join(e.conf, "unrelated"), "x")
	consistently(t, "a single write", 1500*time.Millisecond, func() bool { return r.writes.Load() == 1 })
	after, _ := os.Stat(path)
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("the file's mtime changed")
	}
}

func TestRunKeepsIdenticalFileFromEarlierDaemon(t *testing.T) {
	e := newEnv(t)
	primary := filepath.Join(e.auto, "10-a.conf")
	put(t, primary, conf("bridge", "0.3.1"))
	_, content, err := Generate(e.d, nil, primary, []byte(conf("bridge", "0.3.1")))
	if err != nil {
		t.Fatal(err)
	}
	put(t, filepath.Join(e.conf, "00-multus.conf"), string(content))
	r := start(t, e.d, 0)
	eventually(t, "the primary chosen", func() bool { return r.log.has(slog.LevelInfo, "using primary", primary) })
	consistently(t, "no write", 300*time.Millisecond, func() bool { return r.writes.Load() == 0 })
}

func TestRunRemovesOtherExtension(t *testing.T) {
	e := newEnv(t)
	e.d.CNIVersion = "1.0.0"
	put(t, filepath.Join(e.auto, "10-a.conf"), conf("bridge", "1.0.0"))
	stale := filepath.Join(e.conf, "00-multus.conf")
	put(t, stale, `{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus-shim"}`)
	r := start(t, e.d, 0)
	eventually(t, "the conflist", func() bool { return exists(r.m.Path()) })
	eventually(t, "the stale .conf removed", func() bool { return !exists(stale) })
}
