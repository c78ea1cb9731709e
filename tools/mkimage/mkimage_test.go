package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/polynet-cni/polynet/tools/scratchimage/imagetest"
)

var testEpoch = time.Unix(1_700_000_000, 0).UTC()

// fakeBinDir writes the seven binaries, as static amd64 executables, into a new
// temporary folder, with the given mode and modification time, which must not
// show in the image.
func fakeBinDir(t *testing.T, mode os.FileMode, mtime time.Time) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range Binaries {
		p := filepath.Join(dir, b)
		if err := os.WriteFile(p, imagetest.Executable(elf.EM_X86_64, false, "binary "+b), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func testOptions(binDir, outDir string) Options {
	return Options{BinDir: binDir, OutDir: outDir, Repository: DefaultRepository,
		Version: "v1.2.3-4-gabcdef0-dirty", Revision: "abcdef0123", ExtraTags: []string{"snapshot"}, Epoch: testEpoch}
}

func build(t *testing.T, o Options) (Result, []byte) {
	t.Helper()
	res, err := Build(o)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	data, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	return res, data
}

// TestBuildIsReproducible builds from two copies of the same binaries, with other
// modes and times and in other folders, and expects the same bytes; a binary that
// changes by one byte must change the digest.
func TestBuildIsReproducible(t *testing.T) {
	resA, dataA := build(t, testOptions(fakeBinDir(t, 0o755, time.Now()), t.TempDir()))
	otherBins := fakeBinDir(t, 0o700, time.Unix(42, 0))
	resB, dataB := build(t, testOptions(otherBins, t.TempDir()))
	if resA.ManifestDigest != resB.ManifestDigest || !bytes.Equal(dataA, dataB) {
		t.Fatalf("two builds of the same inputs differ: %s (%d bytes) and %s (%d bytes)",
			resA.ManifestDigest, len(dataA), resB.ManifestDigest, len(dataB))
	}
	if want := "polynet-v1.2.3-4-gabcdef0-dirty.tar"; filepath.Base(resA.Path) != want {
		t.Errorf("archive name %s, want %s", filepath.Base(resA.Path), want)
	}

	f, err := os.OpenFile(filepath.Join(otherBins, "passthru"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("x"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	resC, _ := build(t, testOptions(otherBins, t.TempDir()))
	if resC.ManifestDigest == resA.ManifestDigest {
		t.Errorf("a changed binary left the digest at %s", resA.ManifestDigest)
	}
}

// TestImageContents reads the image under each reference the way `docker load` does
// (go-containerregistry's docker-archive reader) and checks what mkimage puts in it:
// upstream's file tree, the entrypoint links, the binaries' contents, the
// configuration and labels, and the epoch as every time. That the archive and layer
// are otherwise fixed and sorted is tools/scratchimage's to test.
func TestImageContents(t *testing.T) {
	o := testOptions(fakeBinDir(t, 0o700, time.Now()), t.TempDir())
	res, _ := build(t, o)
	if diff := cmp.Diff([]string{DefaultRepository + ":v1.2.3-4-gabcdef0-dirty", DefaultRepository + ":snapshot"}, res.References); diff != "" {
		t.Errorf("references (-want +got):\n%s", diff)
	}
	for _, ref := range res.References {
		tag, err := name.NewTag(ref)
		if err != nil {
			t.Fatalf("reference %s: %v", ref, err)
		}
		img, err := tarball.ImageFromPath(res.Path, &tag)
		if err != nil {
			t.Fatalf("reading %s from manifest.json: %v", ref, err)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("image %s: %v", ref, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(imageConfig(o), cf.Config); diff != "" {
			t.Errorf("%s config (-want +got):\n%s", ref, diff)
		}
		if !cf.Created.Time.Equal(testEpoch) || cf.OS != "linux" || cf.Architecture != "amd64" {
			t.Errorf("%s: created %v, platform %s/%s", ref, cf.Created, cf.OS, cf.Architecture)
		}
		if diff := cmp.Diff(wantTree(), layerTree(t, img)); diff != "" {
			t.Errorf("%s layer (-want +got):\n%s", ref, diff)
		}
	}
}

// node is one member of the image's layer as a test compares it.
type node struct {
	Type           byte
	Mode           int64
	Target, Prefix string
}

func wantTree() map[string]node {
	dir := func(mode int64) node { return node{Type: tar.TypeDir, Mode: mode} }
	link := func(target string) node { return node{Type: tar.TypeSymlink, Mode: 0o777, Target: target} }
	tree := map[string]node{
		"etc/": dir(0o755), "run/": dir(0o755), "tmp/": dir(0o1777), "usr/": dir(0o755),
		"usr/src/": dir(0o755), "usr/src/multus-cni/": dir(0o755), BinPath + "/": dir(0o755), "var/": dir(0o755),
		"var/run":         link("../run"),
		"install_multus":  link(BinPath + "/install_multus"),
		"thin_entrypoint": link(BinPath + "/thin_entrypoint"),
	}
	for _, b := range Binaries {
		tree[BinPath+"/"+b] = node{Type: tar.TypeReg, Mode: 0o755, Prefix: "\x7fELF"}
	}
	return tree
}

// layerTree reads the image's only layer; a regular file's Prefix is its first four
// bytes, and its content must end in the name fakeBinDir wrote into it.
func layerTree(t *testing.T, img v1.Image) map[string]node {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	members, err := imagetest.ReadTar(rc)
	if err != nil {
		t.Fatal(err)
	}
	tree := map[string]node{}
	for _, m := range members {
		h := m.Header
		if !h.ModTime.Equal(testEpoch) {
			t.Errorf("/%s has time %v, want the epoch", h.Name, h.ModTime)
		}
		n := node{Type: h.Typeflag, Mode: h.Mode, Target: h.Linkname}
		if h.Typeflag == tar.TypeReg {
			n.Prefix = string(m.Body[:min(4, len(m.Body))])
			if !strings.HasSuffix(string(m.Body), "binary "+filepath.Base(h.Name)) {
				t.Errorf("/%s does not hold its binary", h.Name)
			}
		}
		tree[h.Name] = n
	}
	return tree
}

// TestBinaryChecks: a missing binary fails the build naming the file, as do a
// dynamically linked one, one for another machine and one that is not ELF; no
// archive is left behind.
func TestBinaryChecks(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		want    []string
	}{
		{"missing install_multus", remove("install_multus"), []string{"missing binary", "install_multus"}},
		{"missing thin_entrypoint", remove("thin_entrypoint"), []string{"missing binary", "thin_entrypoint"}},
		{"missing two", func(t *testing.T, dir string) {
			remove("multus")(t, dir)
			remove("passthru")(t, dir)
		}, []string{"/multus\n", "/passthru\n", "make build"}},
		{"dynamic", replace("multus-daemon", func(*testing.T) []byte { return imagetest.Executable(elf.EM_X86_64, true, "") }),
			[]string{"multus-daemon is dynamically linked", "CGO_ENABLED=0"}},
		{"arm64", replace("multus-shim", func(*testing.T) []byte { return imagetest.Executable(elf.EM_AARCH64, false, "") }),
			[]string{"multus-shim is for", "EM_AARCH64"}},
		{"script", replace("multus", func(*testing.T) []byte { return []byte("#!/bin/sh\n") }),
			[]string{"multus is not an ELF executable"}},
		{"folder", func(t *testing.T, dir string) {
			remove("passthru")(t, dir)
			if err := os.Mkdir(filepath.Join(dir, "passthru"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, []string{"passthru is not a regular file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bins, out := fakeBinDir(t, 0o755, testEpoch), t.TempDir()
			tt.prepare(t, bins)
			_, err := Build(testOptions(bins, out))
			if err == nil {
				t.Fatal("Build succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if left, _ := os.ReadDir(out); len(left) != 0 {
				t.Errorf("a failed build left %v in the output folder", left)
			}
		})
	}
}

func remove(binary string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.Remove(filepath.Join(dir, binary)); err != nil {
			t.Fatal(err)
		}
	}
}

func replace(binary string, content func(*testing.T) []byte) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.WriteFile(filepath.Join(dir, binary), content(t), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
