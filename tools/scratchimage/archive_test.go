package scratchimage

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/polynet-cni/polynet/tools/scratchimage/imagetest"
)

var testRefs = []Ref{
	{Name: "polynet.test/image:v1", Tag: "v1"},
	{Name: "polynet.test/image:snapshot", Tag: "snapshot"},
}

func testImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := New(Spec{
		Entries:   []Entry{File("bin/tool", 0o755, []byte("tool")), Symlink("tool", "bin/tool")},
		Config:    v1.Config{Entrypoint: []string{"/tool"}},
		Epoch:     testEpoch,
		CreatedBy: "scratchimage test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func writeArchive(t *testing.T, a Archive) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out", "image.tar")
	if err := a.WriteFile(path); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}

// TestArchiveIsReproducible writes the same image twice, in other folders, and from
// an image built a second time, and expects the same bytes.
func TestArchiveIsReproducible(t *testing.T) {
	for _, docker := range []bool{false, true} {
		_, a := writeArchive(t, Archive{Image: testImage(t), Refs: testRefs, Epoch: testEpoch, DockerManifest: docker})
		_, b := writeArchive(t, Archive{Image: testImage(t), Refs: testRefs, Epoch: testEpoch, DockerManifest: docker})
		if !bytes.Equal(a, b) {
			t.Errorf("docker manifest %v: two archives of the same image differ", docker)
		}
	}
}

// TestArchiveMembers checks the members an importer reads: sorted, fixed headers,
// the index naming the image once per reference, manifest.json only when asked
// for, and that go-containerregistry reads a valid image both from the OCI layout
// and from manifest.json.
func TestArchiveMembers(t *testing.T) {
	for _, docker := range []bool{false, true} {
		t.Run(map[bool]string{false: "oci", true: "docker"}[docker], func(t *testing.T) {
			path, data := writeArchive(t, Archive{Image: testImage(t), Refs: testRefs, Epoch: testEpoch, DockerManifest: docker})
			if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o644 {
				t.Errorf("archive file: %v, %v", info, err)
			}
			members := readTar(t, bytes.NewReader(data))
			files := map[string][]byte{}
			var names []string
			for _, m := range members {
				n := m.Header.Name
				if strings.HasPrefix(n, "blobs/sha256/") && n != "blobs/sha256/" {
					n = "blobs/sha256/*"
				}
				names = append(names, n)
				files[m.Header.Name] = m.Body
				wantMode, wantType := int64(0o644), byte(tar.TypeReg)
				if strings.HasSuffix(m.Header.Name, "/") {
					wantMode, wantType = 0o755, tar.TypeDir
				}
				if m.Header.Mode != wantMode || m.Header.Typeflag != wantType {
					t.Errorf("%s: mode %o type %c", m.Header.Name, m.Header.Mode, m.Header.Typeflag)
				}
			}
			want := []string{"blobs/", "blobs/sha256/", "blobs/sha256/*", "blobs/sha256/*", "blobs/sha256/*", "index.json"}
			if docker {
				want = append(want, "manifest.json")
			}
			want = append(want, "oci-layout")
			if diff := cmp.Diff(want, names); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
			if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
				t.Errorf("oci-layout is %s", got)
			}
			checkIndex(t, files["index.json"])
			checkLayout(t, members)
			if docker {
				for _, r := range testRefs {
					tag, err := name.NewTag(r.Name)
					if err != nil {
						t.Fatal(err)
					}
					img, err := tarball.ImageFromPath(path, &tag)
					if err != nil {
						t.Fatalf("%s from manifest.json: %v", r.Name, err)
					}
					if err := validate.Image(img); err != nil {
						t.Errorf("%s from manifest.json: %v", r.Name, err)
					}
				}
			}
		})
	}
}

func checkIndex(t *testing.T, data []byte) {
	t.Helper()
	var index v1.IndexManifest
	if err := json.Unmarshal(data, &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != len(testRefs) {
		t.Fatalf("index has %d entries, want %d", len(index.Manifests), len(testRefs))
	}
	for i, d := range index.Manifests {
		want := map[string]string{AnnotationImageName: testRefs[i].Name, AnnotationRefName: testRefs[i].Tag}
		if diff := cmp.Diff(want, d.Annotations); diff != "" {
			t.Errorf("entry %d annotations (-want +got):\n%s", i, diff)
		}
		if d.ArtifactType != "" || d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture != "amd64" {
			t.Errorf("entry %d: %+v", i, d)
		}
	}
}

// checkLayout unpacks the archive's members into a folder and reads it as an OCI
// image layout, as containerd and podman do.
func checkLayout(t *testing.T, members []imagetest.Member) {
	t.Helper()
	dir := t.TempDir()
	for _, m := range members {
		p := filepath.Join(dir, filepath.FromSlash(m.Header.Name))
		var err error
		if m.Header.Typeflag == tar.TypeDir {
			err = os.MkdirAll(p, 0o755)
		} else {
			err = os.WriteFile(p, m.Body, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	index, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(index); err != nil {
		t.Errorf("OCI layout: %v", err)
	}
}

// brokenImage is an image whose layer cannot be read.
type brokenImage struct{ v1.Image }

type brokenLayer struct{ v1.Layer }

var errBroken = errors.New("layer unreadable")

func (b brokenImage) Layers() ([]v1.Layer, error) {
	ls, err := b.Image.Layers()
	for i := range ls {
		ls[i] = brokenLayer{ls[i]}
	}
	return ls, err
}

func (brokenLayer) Compressed() (io.ReadCloser, error) { return nil, errBroken }

// TestWriteFileFailureKeepsOldFile: a write that fails half way leaves the file that
// was there and no temporary file; an archive without a reference is refused.
func TestWriteFileFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "image.tar")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Archive{Image: brokenImage{testImage(t)}, Refs: testRefs, Epoch: testEpoch}.WriteFile(path)
	if !errors.Is(err, errBroken) {
		t.Errorf("WriteFile = %v, want %v", err, errBroken)
	}
	if err := (Archive{Image: testImage(t), Epoch: testEpoch}).WriteFile(path); err == nil {
		t.Error("an archive without a reference was written")
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "old" {
		t.Errorf("after failed writes the file holds %q, %v", data, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("failed writes left %v", left)
	}
}
