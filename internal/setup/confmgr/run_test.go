package confmgr

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunPicksPrimary(t *testing.T) {
	tests := []struct {
		name    string
		sameDir bool              // autoconfig folder is the CNI configuration folder, as deployed
		files   map[string]string // in the autoconfig folder
		want    string
		warn    string // a file skipped with a Warn
	}{{
		name:  "first by name",
		files: map[string]string{"20-b.conf": conf("ptp", "0.3.1"), "10-a.conflist": conf("bridge", "0.3.1")},
		want:  "10-a.conflist",
	}, {
		name:    "skips 00-multus files, renamed copies and other extensions",
		sameDir: true,
		files: map[string]string{"00-multus.conf": conf("bridge", "0.3.1"), "00-multus-old.conflist": conf("bridge", "0.3.1"),
			"01-a.conf.cilium_bak": conf("bridge", "0.3.1"), "02-notes.txt": conf("bridge", "0.3.1"), "30-c.json": conf("ptp", "0.3.1")},
		want: "30-c.json",
	}, {
		name:  "skips a multus-shim configuration and takes the next",
		files: map[string]string{"05-shim.conf": conf("multus-shim", "0.3.1"), "10-real.conf": conf("bridge", "0.3.1")},
		want:  "10-real.conf",
		warn:  "05-shim.conf",
	}, {
		name: "skips a list holding thin multus",
		files: map[string]string{"05-thin.conflist": `{"cniVersion":"0.3.1","name":"m","plugins":[{"type":"multus"}]}`,
			"10-real.conf": conf("bridge", "0.3.1")},
		want: "10-real.conf",
		warn: "05-thin.conflist",
	}, {
		name:  "skips files that are not JSON objects",
		files: map[string]string{"05-broken.conf": `{"cniVersion":`, "06-list.conf": `[]`, "10-real.conf": conf("bridge", "0.3.1")},
		want:  "10-real.conf",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.sameDir {
				e.d.CNIConfigDir, e.conf = e.auto, e.auto
			}
			for name, content := range tc.files {
				put(t, filepath.Join(e.auto, name), content)
			}
			r := start(t, e.d, 0)
			want := filepath.Join(e.auto, tc.want)
			eventually(t, "clusterNetwork "+want, func() bool { return clusterNetwork(r.m.Path()) == want })
			if tc.warn != "" && !r.log.has(slog.LevelWarn, tc.warn, "itself") {
				t.Errorf("no Warn about skipping %s: %q", tc.warn, r.log)
			}
		})
	}
}

func TestRunMasterCNI(t *testing.T) {
	e := newEnv(t)
	put(t, filepath.Join(e.auto, "10-a.conf"), conf("bridge", "0.3.1"))
	put(t, filepath.Join(e.auto, "20-b.conf"), conf("ptp", "0.3.1"))
	e.d.MultusMasterCNI = "20-b.conf"
	r := start(t, e.d, 0)
	want := filepath.Join(e.auto, "20-b.conf")
	eventually(t, "the named primary", func() bool { return clusterNetwork(r.m.Path()) == want })
}

func TestRunMasterCNIRefusesMultus(t *testing.T) {
	for _, typ := range []string{"multus", "multus-shim"} {
		t.Run(typ, func(t *testing.T) {
			e := newEnv(t)
			put(t, filepath.Join(e.auto, "10-a.conf"), conf("bridge", "0.3.1"))
			put(t, filepath.Join(e.auto, "05-m.conf"), conf(typ, "0.3.1"))
			e.d.MultusMasterCNI = "05-m.conf"
			r := start(t, e.d, 0)
			err := r.result(t)
			if err == nil || !strings.Contains(err.Error(), "05-m.conf") || !strings.Contains(err.Error(), "itself") {
				t.Fatalf("Run = %v, want an error about delegating to itself", err)
			}
			if exists(r.m.Path()) {
				t.Error("file written for a self-delegating primary")
			}
		})
	}
}

func TestRunWaitsForPrimary(t *testing.T) {
	e := newEnv(t)
	r := start(t, e.d, 0)
	consistently(t, "no file without a primary", 200*time.Millisecond, func() bool { return !exists(r.m.Path()) })
	put(t, filepath.Join(e.auto, "10-late.conf"), conf("bridge", "0.3.1"))
	want := filepath.Join(e.auto, "10-late.conf")
	eventually(t, "the late primary", func() bool { return clusterNetwork(r.m.Path()) == want })
}

func TestRunPrimaryTimeout(t *testing.T) {
	e := newEnv(t)
	r := start(t, e.d, 200*time.Millisecond)
	err := r.result(t)
	if err == nil || !strings.Contains(err.Error(), e.auto) {
		t.Fatalf("Run = %v, want a timeout naming %s", err, e.auto)
	}
}

func TestRunVersionMismatch(t *testing.T) {
	e := newEnv(t)
	e.d.CNIVersion = "1.0.0"
	put(t, filepath.Join(e.auto, "10-a.conf"), conf("bridge", "0.3.1"))
	r := start(t, e.d, 0)
	err := r.result(t)
	if err == nil || !strings.Contains(err.Error(), "0.3.1") || !strings.Contains(err.Error(), "1.0.0") {
		t.Fatalf("Run = %v, want an error naming both versions", err)
	}
}

func TestRunForceCNIVersion(t *testing.T) {
	e := newEnv(t)
	e.d.CNIVersion, e.d.ForceCNIVersion = "1.0.0", true
	primary := filepath.Join(e.auto, "10-a.conflist")
	orig := "{\n  \"cniVersion\": \"0.3.1\",\n  \"name\": \"kindnet\",\n  \"plugins\": [{\"type\": \"ptp\"}]\n}\n"
	put(t, primary, orig)
	r := start(t, e.d, 0)
	eventually(t, "the conflist", func() bool { return clusterNetwork(r.m.Path()) == primary })
	if got, want := read(t, primary), strings.Replace(orig, "0.3.1", "1.0.0", 1); got != want {
		t.Errorf("primary rewritten to\n%s\nwant\n%s", got, want)
	}
	if filepath.Base(r.m.Path()) != "00-multus.conflist" {
		t.Errorf("Path() = %s, want a .conflist for 1.0.0", r.m.Path())
	}
}

func TestRunShutdown(t *testing.T) {
	for _, remove := range []bool{true, false} {
		t.Run(map[bool]string{true: "remove", false: "keep"}[remove], func(t *testing.T) {
			e := newEnv(t)
			e.d.RemoveConfigOnShutdown = remove
			put(t, filepath.Join(e.auto, "10-a.conf"), conf("bridge", "0.3.1"))
			r := start(t, e.d, 0)
			eventually(t, "the file", func() bool { return exists(r.m.Path()) })
			if err := r.stop(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if exists(r.m.Path()) == remove {
				t.Errorf("file exists = %v after shutdown with removeConfigOnShutdown %v", !remove, remove)
			}
		})
	}
}

func TestRunCopyMode(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "70-multus.conf")
	put(t, src, conf("multus", "0.3.1"))
	e.d.MultusConfigFile = src
	r := start(t, e.d, 0)
	dst := filepath.Join(e.conf, "70-multus.conf")
	if r.m.Path() != dst {
		t.Fatalf("Path() = %s, want %s", r.m.Path(), dst)
	}
	eventually(t, "the copy", func() bool { return exists(dst) && read(t, dst) == conf("multus", "0.3.1") })
	os.Remove(dst)
	eventually(t, "the restored copy", func() bool { return exists(dst) })
	put(t, src, conf("multus", "0.4.0"))
	eventually(t, "the updated copy", func() bool { return read(t, dst) == conf("multus", "0.4.0") })
	select {
	case err := <-r.errc:
		r.errc <- err
		t.Fatalf("Run returned %v before its context ended", err)
	default:
	}
	// The hook runs just after the rename the test saw.
	eventually(t, "3 writes", func() bool { return r.writes.Load() == 3 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunCopyModeSourceInPlace(t *testing.T) {
	e := newEnv(t)
	e.d.RemoveConfigOnShutdown = true
	src := filepath.Join(e.conf, "70-multus.conf")
	put(t, src, conf("multus", "0.3.1"))
	e.d.MultusConfigFile = src
	r := start(t, e.d, 0)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !exists(src) {
		t.Error("the administrator's own file was removed")
	}
}

func TestRunBadConfiguration(t *testing.T) {
	m := New(Options{})
	if err := m.Run(context.Background()); err == nil {
		t.Error("Run without a daemon configuration succeeded")
	}
}
