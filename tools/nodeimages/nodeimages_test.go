package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/polynet-cni/polynet/tools/scratchimage"
	"github.com/polynet-cni/polynet/tools/scratchimage/imagetest"
)

var (
	pauseOnce sync.Once
	pauseBin  string
	pauseErr  error
)

// buildPause builds ./pause statically once per test binary, as hack/testbed.sh
// does. `go test` puts its own go first on PATH.
func buildPause(t *testing.T) string {
	t.Helper()
	pauseOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nodeimages-test-")
		if err != nil {
			pauseErr = err
			return
		}
		pauseBin = filepath.Join(dir, "pause")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", pauseBin, "./pause")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			pauseErr = errors.New("go build ./pause: " + err.Error() + "\n" + string(out))
		}
	})
	if pauseErr != nil {
		t.Fatal(pauseErr)
	}
	return pauseBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pauseBin != "" {
		os.RemoveAll(filepath.Dir(pauseBin))
	}
	os.Exit(code)
}

// archive is an OCI image archive read back the way an importer reads it.
type archive struct {
	files map[string][]byte
	order []string
}

func readArchive(t *testing.T, path string) archive {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	members, err := imagetest.ReadTar(f)
	if err != nil {
		t.Fatal(err)
	}
	a := archive{files: map[string][]byte{}}
	for _, m := range members {
		a.files[m.Header.Name] = m.Body
		a.order = append(a.order, m.Header.Name)
	}
	return a
}

func (a archive) blob(t *testing.T, h v1.Hash) []byte {
	t.Helper()
	data, ok := a.files["blobs/"+h.Algorithm+"/"+h.Hex]
	if !ok {
		t.Fatalf("blob %s is missing", h)
	}
	return data
}

// image returns the only index entry, the manifest, the config and the layer's tar
// headers (with the first bytes of each regular file).
func (a archive) image(t *testing.T) (v1.Descriptor, *v1.ConfigFile, map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	if string(a.files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci-layout is %q", a.files["oci-layout"])
	}
	var index v1.IndexManifest
	if err := json.Unmarshal(a.files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json has %d entries, want 1", len(index.Manifests))
	}
	desc := index.Manifests[0]
	var m v1.Manifest
	if err := json.Unmarshal(a.blob(t, desc.Digest), &m); err != nil {
		t.Fatal(err)
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(a.blob(t, m.Config.Digest), &cf); err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 || len(cf.RootFS.DiffIDs) != 1 {
		t.Fatalf("%d layers, %d diff ids, want 1", len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	zr, err := gzip.NewReader(bytes.NewReader(a.blob(t, m.Layers[0].Digest)))
	if err != nil {
		t.Fatal(err)
	}
	members, err := imagetest.ReadTar(zr)
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]*tar.Header{}
	contents := map[string][]byte{}
	for _, m := range members {
		name := strings.TrimSuffix(m.Header.Name, "/")
		if _, dup := headers[name]; dup {
			t.Fatalf("layer holds %s twice", name)
		}
		headers[name], contents[name] = m.Header, m.Body
	}
	return desc, &cf, headers, contents
}

func writeImages(t *testing.T, out, busybox string, applets []string) {
	t.Helper()
	pause, err := PauseImage(buildPause(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(filepath.Join(out, "pause.tar"), pause, "polynet.test/pause:3.10"); err != nil {
		t.Fatal(err)
	}
	toolbox, err := ToolboxImage(busybox, applets)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(filepath.Join(out, "toolbox.tar"), toolbox, "polynet.test/toolbox:1"); err != nil {
		t.Fatal(err)
	}
}

// TestArchivesAreNamedImportableAndReproducible checks what an importer reads: the
// index names each image by full reference and tag, the layer holds the expected
// files, and two builds give identical bytes. The pause program stands in for busybox.
func TestArchivesAreNamedImportableAndReproducible(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	applets := []string{"bin/sh", "sbin/ip", "usr/bin/wget", "bin/sleep"}
	for _, d := range dirs {
		writeImages(t, d, buildPause(t), applets)
	}
	for _, name := range []string{"pause.tar", "toolbox.tar"} {
		a, err := os.ReadFile(filepath.Join(dirs[0], name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dirs[1], name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds", name)
		}
	}

	pause := readArchive(t, filepath.Join(dirs[0], "pause.tar"))
	want := []string{"blobs/", "blobs/sha256/"}
	if got := pause.order[:2]; got[0] != want[0] || got[1] != want[1] || pause.order[len(pause.order)-1] != "oci-layout" {
		t.Errorf("archive members in order %v", pause.order)
	}
	desc, cf, headers, contents := pause.image(t)
	if desc.Annotations[scratchimage.AnnotationImageName] != "polynet.test/pause:3.10" || desc.Annotations[scratchimage.AnnotationRefName] != "3.10" {
		t.Errorf("pause index annotations %v", desc.Annotations)
	}
	if desc.ArtifactType != "" || desc.Platform == nil || desc.Platform.OS != "linux" || desc.Platform.Architecture != "amd64" {
		t.Errorf("pause index entry %+v", desc)
	}
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/pause" || cf.Config.User != "65535:65535" {
		t.Errorf("pause config %+v", cf.Config)
	}
	if len(headers) != 1 || headers["pause"] == nil || headers["pause"].Mode != 0o755 || !bytes.HasPrefix(contents["pause"], []byte("\x7fELF")) {
		t.Errorf("pause layer %v", headers)
	}

	toolbox := readArchive(t, filepath.Join(dirs[0], "toolbox.tar"))
	desc, cf, headers, _ = toolbox.image(t)
	if desc.Annotations[scratchimage.AnnotationImageName] != "polynet.test/toolbox:1" || desc.Annotations[scratchimage.AnnotationRefName] != "1" {
		t.Errorf("toolbox index annotations %v", desc.Annotations)
	}
	if len(cf.Config.Cmd) != 1 || cf.Config.Cmd[0] != "sh" {
		t.Errorf("toolbox config %+v", cf.Config)
	}
	links := map[string]string{
		"bin/sh":       "busybox",
		"bin/sleep":    "busybox",
		"sbin/ip":      "../bin/busybox",
		"usr/bin/wget": "../../bin/busybox",
		"var/run":      "../run",
	}
	for name, target := range links {
		h := headers[name]
		if h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != target {
			t.Errorf("toolbox /%s: %+v, want a link to %s", name, h, target)
		}
	}
	for name, mode := range map[string]int64{"bin/busybox": 0o755, "etc/passwd": 0o644, "tmp": 0o1777, "usr/bin": 0o755} {
		if h := headers[name]; h == nil || h.Mode != mode || h.ModTime.Unix() != 0 || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("toolbox /%s: %+v, want mode %o at the epoch, owned by 0:0", name, h, mode)
		}
	}
}

// TestRefusals checks what the images must never carry: a latest or missing tag, a
// dynamically linked program, an applet outside the image's root.
func TestRefusals(t *testing.T) {
	for _, ref := range []string{"polynet.test/pause:latest", "polynet.test/pause", "not a reference"} {
		if _, err := parseRef(ref); err == nil {
			t.Errorf("reference %q was accepted", ref)
		}
	}
	if _, err := ToolboxImage(buildPause(t), []string{"../etc/sh"}); err == nil {
		t.Error("an applet outside the root was accepted")
	}
	if _, err := PauseImage(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing pause program was accepted")
	}
	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := PauseImage(notELF); err == nil {
		t.Error("a script was accepted as the pause program")
	}
	// A dynamically linked program of the host, when it has one.
	for _, p := range []string{"/bin/ls", "/usr/bin/ls"} {
		if err := scratchimage.CheckStatic(p); errors.Is(err, scratchimage.ErrDynamic) {
			return
		}
	}
	t.Log("no dynamically linked ls on this host: that refusal is not checked")
}

// TestRunWithBusybox runs the command as hack/testbed.sh does, with Debian's
// busybox-static when it is installed.
func TestRunWithBusybox(t *testing.T) {
	if err := scratchimage.CheckStatic("/bin/busybox"); err != nil {
		t.Skipf("no static busybox (Debian's busybox-static; hack/testbed.sh node installs it): %v", err)
	}
	out := t.TempDir()
	if err := run([]string{"-out", out, "-pause-bin", buildPause(t), "-pause-ref", "polynet.test/pause:3.10",
		"-busybox", "/bin/busybox", "-toolbox-ref", "polynet.test/toolbox:1"}); err != nil {
		t.Fatal(err)
	}
	_, _, headers, _ := readArchive(t, filepath.Join(out, "toolbox.tar")).image(t)
	for _, name := range []string{"bin/sh", "bin/sleep", "bin/cat", "bin/ls", "bin/ping", "sbin/ip", "usr/bin/nc", "usr/bin/wget", "bin/ps"} {
		if headers[name] == nil {
			t.Errorf("toolbox has no /%s", name)
		}
	}
	if err := run([]string{"-out", out}); err == nil || !strings.Contains(err.Error(), "-pause-bin is required") {
		t.Errorf("missing flags: %v", err)
	}
}
