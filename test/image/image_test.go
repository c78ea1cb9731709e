// Package image tests `make image` end to end: it builds the seven binaries, runs the
// real image builder (tools/mkimage) on them twice, and opens the archive as a
// consumer would, with the OCI spec's own types rather than the builder's library:
// index.json, the manifest, the configuration, manifest.json for `docker load`, the
// digests of every blob and the layer's diff_id, then the layer's file tree,
// unpacked, and the binaries run from it. Where skopeo is installed (the test bed
// installs it), it reads the archive through both of its transports as podman does.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/polynet-cni/polynet/test/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }

const (
	repository = "ghcr.io/polynet-cni/polynet"
	// version is what the builder gets for -version; its tag is sanitized.
	version    = testbed.TestBuildVersion + "+image"
	versionTag = testbed.TestBuildVersion + "-image"
	epoch      = 1_750_000_000
)

var (
	binaries = []string{"multus", "multus-shim", "multus-daemon", "install_multus", "thin_entrypoint", "passthru", "multus-cert-approver"}
	refs     = []string{repository + ":" + versionTag, repository + ":snapshot"}
)

// archive is an image archive read into memory, member by member.
type archive struct {
	path  string
	names []string
	files map[string][]byte
}

func TestImageArchive(t *testing.T) {
	bed, err := testbed.Load()
	if err != nil {
		t.Fatal(err)
	}
	binDir := testbed.BinDir(t, binaries...)
	tool := buildTool(t, bed.Root)

	first, summary := runBuilder(t, tool, binDir)
	second, _ := runBuilder(t, tool, binDir)
	if sa, sb := fileDigest(t, first), fileDigest(t, second); sa != sb {
		t.Errorf("two builds from the same binaries differ: %s and %s", sa, sb)
	}
	a := readArchive(t, first)

	m, manifestDigest := checkIndex(t, a)
	config := checkManifest(t, a, m)
	checkConfig(t, config)
	checkDockerManifest(t, a, m)
	for _, want := range append([]string{manifestDigest.String(), first}, refs...) {
		if !strings.Contains(summary, want) {
			t.Errorf("the summary does not name %s:\n%s", want, summary)
		}
	}

	root := unpackLayer(t, a.files[blobPath(m.Layers[0].Digest)])
	checkTree(t, root, binDir)
	runFromTree(t, root)
	checkWithSkopeo(t, first, manifestDigest, m.Config.Digest)
}

// buildTool builds tools/mkimage into a temporary folder.
func buildTool(t *testing.T, root string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "mkimage")
	cmd := exec.Command("go", "build", "-o", out, "./tools/mkimage")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building tools/mkimage: %v\n%s", err, msg)
	}
	return out
}

// runBuilder runs the builder as the Makefile does, into a new folder, and returns
// the archive's path and the summary it printed.
func runBuilder(t *testing.T, tool, binDir string) (string, string) {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command(tool, "-bin", binDir, "-out", out, "-version", version,
		"-revision", testbed.TestBuildCommit, "-epoch", strconv.Itoa(epoch))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\nstdout:\n%s\nstderr:\n%s", cmd.Args, err, &stdout, &stderr)
	}
	t.Logf("mkimage:\n%s", &stdout)
	path := filepath.Join(out, "polynet-"+versionTag+".tar")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no archive where expected: %v; the folder holds %v", err, listDir(out))
	}
	return path, stdout.String()
}

func listDir(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func readArchive(t *testing.T, path string) archive {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := archive{path: path, files: map[string][]byte{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		a.names = append(a.names, h.Name)
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if a.files[h.Name], err = io.ReadAll(tr); err != nil {
			t.Fatalf("reading %s in %s: %v", h.Name, path, err)
		}
	}
	for name, data := range a.files {
		hexPart, ok := strings.CutPrefix(name, "blobs/sha256/")
		if sum := sha256.Sum256(data); ok && hex.EncodeToString(sum[:]) != hexPart {
			t.Errorf("blob %s holds content of digest sha256:%x", name, sum)
		}
	}
	return a
}

func fileDigest(t *testing.T, path string) digest.Digest {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := digest.SHA256.FromReader(f)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// blob returns the blob a descriptor points at, checking its size.
func (a archive) blob(t *testing.T, d ocispec.Descriptor) []byte {
	t.Helper()
	data, ok := a.files[blobPath(d.Digest)]
	if !ok {
		t.Fatalf("no blob for %s (%s) in the archive; members: %v", d.Digest, d.MediaType, a.names)
	}
	if int64(len(data)) != d.Size {
		t.Fatalf("blob %s is %d bytes, its descriptor says %d", d.Digest, len(data), d.Size)
	}
	return data
}

func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

func decode(t *testing.T, what string, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, data)
	}
}

// checkIndex reads oci-layout and index.json: one entry per reference, each the
// same manifest, named for containerd and for the OCI spec, with the platform.
func checkIndex(t *testing.T, a archive) (ocispec.Manifest, digest.Digest) {
	t.Helper()
	var layoutFile ocispec.ImageLayout
	decode(t, "oci-layout", a.files[ocispec.ImageLayoutFile], &layoutFile)
	if layoutFile.Version != ocispec.ImageLayoutVersion {
		t.Errorf("oci-layout version %q, want %q", layoutFile.Version, ocispec.ImageLayoutVersion)
	}
	var index ocispec.Index
	decode(t, "index.json", a.files[ocispec.ImageIndexFile], &index)
	if index.SchemaVersion != 2 || index.MediaType != ocispec.MediaTypeImageIndex || len(index.Manifests) != len(refs) {
		t.Fatalf("index.json: schema %d, media type %q, %d manifests; want 2, %q, %d",
			index.SchemaVersion, index.MediaType, len(index.Manifests), ocispec.MediaTypeImageIndex, len(refs))
	}
	want := index.Manifests[0].Digest
	for i, d := range index.Manifests {
		tag := refs[i][strings.LastIndex(refs[i], ":")+1:]
		wantAnn := map[string]string{"io.containerd.image.name": refs[i], ocispec.AnnotationRefName: tag}
		if diff := cmp.Diff(wantAnn, d.Annotations); diff != "" {
			t.Errorf("index entry %d annotations (-want +got):\n%s", i, diff)
		}
		if d.MediaType != ocispec.MediaTypeImageManifest || d.Digest != want ||
			d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture != "amd64" {
			t.Errorf("index entry %d: %+v", i, d)
		}
	}
	var m ocispec.Manifest
	decode(t, "manifest", a.blob(t, index.Manifests[0]), &m)
	return m, want
}

// checkManifest checks the image manifest and returns the configuration, after
// checking that its diff_id is the digest of the uncompressed layer.
func checkManifest(t *testing.T, a archive, m ocispec.Manifest) ocispec.Image {
	t.Helper()
	if m.SchemaVersion != 2 || m.MediaType != ocispec.MediaTypeImageManifest ||
		m.Config.MediaType != ocispec.MediaTypeImageConfig || len(m.Layers) != 1 ||
		m.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Fatalf("manifest: %+v", m)
	}
	var config ocispec.Image
	decode(t, "config", a.blob(t, m.Config), &config)
	zr, err := gzip.NewReader(bytes.NewReader(a.blob(t, m.Layers[0])))
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	diffID, err := digest.SHA256.FromReader(zr)
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	if got := config.RootFS.DiffIDs; config.RootFS.Type != "layers" || len(got) != 1 || got[0] != diffID {
		t.Errorf("config rootfs %+v, want one diff_id %s", config.RootFS, diffID)
	}
	return config
}

func checkConfig(t *testing.T, config ocispec.Image) {
	t.Helper()
	if config.OS != "linux" || config.Architecture != "amd64" {
		t.Errorf("config platform %s/%s, want linux/amd64", config.OS, config.Architecture)
	}
	if config.Created == nil || !config.Created.Equal(time.Unix(epoch, 0)) {
		t.Errorf("config created %v, want the epoch %v", config.Created, time.Unix(epoch, 0).UTC())
	}
	want := ocispec.ImageConfig{
		Entrypoint: []string{"/thin_entrypoint"},
		WorkingDir: "/",
		Env:        []string{"PATH=/usr/src/multus-cni/bin:/usr/bin:/bin"},
		Labels: map[string]string{
			ocispec.AnnotationVersion:  version,
			ocispec.AnnotationRevision: testbed.TestBuildCommit,
			ocispec.AnnotationTitle:    "polynet",
			ocispec.AnnotationSource:   "https://github.com/polynet-cni/polynet",
		},
	}
	if diff := cmp.Diff(want, config.Config); diff != "" {
		t.Errorf("image config (-want +got):\n%s", diff)
	}
}

// checkDockerManifest reads manifest.json as `docker load` does.
func checkDockerManifest(t *testing.T, a archive, m ocispec.Manifest) {
	t.Helper()
	type item struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var items []item
	decode(t, "manifest.json", a.files["manifest.json"], &items)
	want := []item{{Config: blobPath(m.Config.Digest), RepoTags: refs, Layers: []string{blobPath(m.Layers[0].Digest)}}}
	if diff := cmp.Diff(want, items); diff != "" {
		t.Errorf("manifest.json (-want +got):\n%s", diff)
	}
	for _, it := range items {
		for _, p := range append([]string{it.Config}, it.Layers...) {
			if _, ok := a.files[p]; !ok {
				t.Errorf("manifest.json names %s, which the archive does not hold", p)
			}
		}
	}
}

// checkWithSkopeo reads the archive through skopeo's oci-archive and docker-archive
// transports, the code podman load runs, and copies the image out of each (which
// reads and verifies every blob). The test bed installs skopeo; without it, as a
// user who has not run it, this part is skipped.
func checkWithSkopeo(t *testing.T, path string, manifestDigest, configDigest digest.Digest) {
	t.Run("skopeo", func(t *testing.T) {
		if _, err := exec.LookPath("skopeo"); err != nil {
			if os.Geteuid() == 0 {
				t.Fatal("skopeo is not installed: run `make testbed` (hack/testbed.sh installs it)")
			}
			t.Skip("skopeo is not installed and, not as root, the test bed cannot install it")
		}
		tmp := t.TempDir()
		skopeo := func(args ...string) []byte {
			t.Helper()
			cmd := exec.Command("skopeo", args...)
			// Big temporary files (the unpacked oci-archive) stay in our folder.
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, &stderr)
			}
			return out
		}
		for _, ref := range refs {
			tag := ref[strings.LastIndex(ref, ":")+1:]
			oci, docker := "oci-archive:"+path+":"+tag, "docker-archive:"+path+":"+ref
			if got := digest.FromBytes(skopeo("inspect", "--raw", oci)); got != manifestDigest {
				t.Errorf("%s: manifest digest %s, want %s", oci, got, manifestDigest)
			}
			for _, src := range []string{oci, docker} {
				if got := digest.FromBytes(skopeo("inspect", "--config", "--raw", src)); got != configDigest {
					t.Errorf("%s: config digest %s, want %s", src, got, configDigest)
				}
			}
		}
		for i, src := range []string{"oci-archive:" + path + ":snapshot", "docker-archive:" + path + ":" + refs[1]} {
			skopeo("copy", "--quiet", "--insecure-policy", src, fmt.Sprintf("oci:%s/copy%d:t", tmp, i))
		}
	})
}
