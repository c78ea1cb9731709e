package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polynet-cni/polynet/test/testbed"
)

// gc sends GC to the multus binary as a runtime does, with valid as
// cni.dev/valid-attachments, raw, so no runtime-side cache DELs anything first:
// the case of a runtime that lost its state and will never send those DELs.
func (e *env) gc(conf []byte, valid ...testbed.Sandbox) error {
	e.t.Helper()
	var m map[string]any
	if err := json.Unmarshal(conf, &m); err != nil {
		e.t.Fatal(err)
	}
	list := []map[string]string{}
	for _, sb := range valid {
		list = append(list, map[string]string{"containerID": sb.ContainerID, "ifname": "eth0"})
	}
	m["cni.dev/valid-attachments"] = list
	stdin, _ := json.Marshal(m)
	res, err := testbed.ExecPlugin(e.ctx, testbed.Invocation{
		Binary: e.binary(),
		Env:    map[string]string{"CNI_COMMAND": "GC", "CNI_PATH": e.bed.CNIPluginDir() + ":" + testbed.BinDir(e.t, "recorder")},
		Stdin:  stdin,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if res.ExitCode != 0 {
		return &gcError{string(res.Stdout) + string(res.Stderr)}
	}
	return nil
}

type gcError struct{ msg string }

func (e *gcError) Error() string { return e.msg }

// TestGCRemovesWhatNoRuntimeWillDelete: two pods are added; one sandbox vanishes
// without a DEL (its netns is gone, the runtime forgot it). GC with the other as
// the only valid attachment tears the lost sandbox down through every delegate,
// the real bridge + host-local cluster network and the secondary, releases its
// address and removes its record; a sandbox whose record was lost too is found in
// the result cache and released. The valid pod is never touched, and the
// secondary's GC is told it is valid.
func TestGCRemovesWhatNoRuntimeWillDelete(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.1.0"
		e := newEnv(t)
		e.nad("sec", e.recorderConf(v, "sec", nil), nil)
		conf := e.multusConf(v, map[string]any{"gcGracePeriod": "0s"})
		ann := map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"}
		_, lost, lostNS := e.pod("lost", ann)
		_, orphan, orphanNS := e.pod("orphan", ann)
		_, keep, keepNS := e.pod("keep", ann)
		e.add(conf, lost)
		e.add(conf, orphan)
		e.add(conf, keep)
		keepLinks := links(t, keepNS)
		if err := lostNS.Delete(); err != nil {
			t.Fatal(err)
		}
		if err := orphanNS.Delete(); err != nil {
			t.Fatal(err)
		}
		// The runtime forgot both sandboxes: it will never send their DEL.
		for _, sb := range []testbed.Sandbox{lost, orphan} {
			if err := os.Remove(filepath.Join(e.cacheDir, "results", "multus-cni-network-"+sb.ContainerID+"-eth0")); err != nil {
				t.Fatal(err)
			}
		}
		// The orphan's record is lost too (a disk wiped by hand, a bug of another
		// version): only the result cache still knows it.
		if err := os.Remove(e.recordFile(orphan)); err != nil {
			t.Fatal(err)
		}
		if got := ipamFiles(t, e.dataDir); got != 3 {
			t.Fatalf("%d addresses allocated, want 3", got)
		}

		if err := e.gc(conf, keep); err != nil {
			t.Fatalf("GC: %v\nlog:\n%s", err, readFile(e.logFile))
		}
		if _, err := os.Stat(e.recordFile(lost)); !os.IsNotExist(err) {
			t.Errorf("the lost sandbox's record survived GC")
		}
		if got := ipamFiles(t, e.dataDir); got != 1 {
			t.Errorf("%d addresses allocated after GC, want only the valid pod's", got)
		}
		dels := map[string]bool{}
		for _, r := range e.recordsFor("DEL") {
			dels[r.Env["CNI_CONTAINERID"]] = true
		}
		if !dels[lost.ContainerID] || !dels[orphan.ContainerID] || dels[keep.ContainerID] {
			t.Errorf("secondary DELs for %v, want the lost and orphaned sandboxes only", dels)
		}
		gcs := e.recordsFor("GC")
		if len(gcs) == 0 {
			t.Fatalf("the secondary network got no GC")
		}
		var gcConf struct {
			Valid []map[string]string `json:"cni.dev/valid-attachments"`
		}
		if err := gcs[len(gcs)-1].Conf(&gcConf); err != nil || len(gcConf.Valid) != 1 || gcConf.Valid[0]["containerID"] != keep.ContainerID || gcConf.Valid[0]["ifname"] != "net1" {
			t.Errorf("secondary GC was given %+v (%v), want the valid pod's net1 only", gcConf.Valid, err)
		}
		if got := links(t, keepNS); !sameLinks(got, keepLinks) {
			t.Errorf("the valid pod's links changed: %v, was %v", got, keepLinks)
		}
		if _, err := os.Stat(e.recordFile(keep)); err != nil {
			t.Errorf("the valid pod's record was removed: %v", err)
		}
		e.del(conf, keep)
	})
}

// TestGCSparesYoungRecords: a record younger than gcGracePeriod may belong to an
// ADD that began after the runtime took its list; GC leaves it alone.
func TestGCSparesYoungRecords(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.1.0"
		e := newEnv(t)
		conf := e.multusConf(v, nil) // default grace: one minute
		_, sb, _ := e.pod("young", nil)
		e.add(conf, sb)
		if err := e.gc(conf); err != nil {
			t.Fatalf("GC: %v", err)
		}
		if _, err := os.Stat(e.recordFile(sb)); err != nil {
			t.Errorf("GC removed a record seconds old: %v", err)
		}
		if got := ipamFiles(t, e.dataDir); got != 1 {
			t.Errorf("GC released the young sandbox's address")
		}
		e.del(conf, sb)
	})
}

func ipamFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != "lock" && !strings.HasPrefix(d.Name(), "last_reserved_ip") {
			n++
		}
		return nil
	})
	return n
}

func sameLinks(a, b map[string][]string) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
