package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

var testEpoch = time.Unix(1_700_000_000, 0).UTC()

// fakeELF returns the smallest file debug/elf reads as an executable for machine,
// with a PT_INTERP header when dynamic, followed by payload, which makes each
// binary's content distinct.
func fakeELF(tb testing.TB, machine elf.Machine, dynamic bool, payload string) []byte {
	tb.Helper()
	const ehsize, phentsize = 64, 56
	interp := "/lib64/ld-linux-x86-64.so.2\x00"
	progs := []elf.Prog64{{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Align: 0x1000}}
	if dynamic {
		off := uint64(ehsize + 2*phentsize)
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Off: off,
			Filesz: uint64(len(interp)), Memsz: uint64(len(interp)), Align: 1})
	}
	hdr := elf.Header64{
		Ident:     [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)},
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(machine),
		Version:   uint32(elf.EV_CURRENT),
		Phoff:     ehsize,
		Ehsize:    ehsize,
		Phentsize: phentsize,
		Phnum:     uint16(len(progs)),
	}
	var buf bytes.Buffer
	for _, v := range []any{hdr, progs} {
		if err := binary.Write(&buf, binary.LittleEndian, v); err != nil {
			tb.Fatal(err)
		}
	}
	if dynamic {
		buf.WriteString(interp)
	}
	buf.WriteString(payload)
	return buf.Bytes()
}

// fakeBinDir writes the six binaries, as static amd64 executables, into a new
// temporary folder, with the given mode and modification time, which must not
// show in the image.
func fakeBinDir(t *testing.T, mode os.FileMode, mtime time.Time) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range Binaries {
		p := filepath.Join(dir, b)
		if err := os.WriteFile(p, fakeELF(t, elf.EM_X86_64, false, "binary "+b), mode); err != nil {
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

// TestArchiveEntriesAreFixed checks every tar header of the archive and of its
// layer: epoch times, owner 0:0 without names, sorted names, and that a
// consumer (go-containerregistry's docker-archive reader) finds a valid image
// under each reference.
func TestArchiveEntriesAreFixed(t *testing.T) {
	res, data := build(t, testOptions(fakeBinDir(t, 0o755, time.Now()), t.TempDir()))
	var layer []byte
	names := checkHeaders(t, "archive", bytes.NewReader(data), func(h *tar.Header, body []byte) {
		if strings.HasPrefix(h.Name, "blobs/") && bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
			layer = body
		}
	})
	wantNames := []string{"blobs/", "blobs/sha256/", "blobs/sha256/*", "blobs/sha256/*", "blobs/sha256/*",
		"index.json", "manifest.json", "oci-layout"}
	if diff := cmp.Diff(wantNames, globBlobs(names)); diff != "" {
		t.Errorf("archive members (-want +got):\n%s", diff)
	}
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	if zr.Header.Name != "" || !zr.Header.ModTime.IsZero() {
		t.Errorf("layer gzip header carries name %q, time %v", zr.Header.Name, zr.Header.ModTime)
	}
	checkHeaders(t, "layer", zr, nil)

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
	}
}

// checkHeaders reads every member of a tar, fails on any header that is not fixed,
// and returns the names in order.
func checkHeaders(t *testing.T, what string, r io.Reader, each func(*tar.Header, []byte)) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s %s: %v", what, h.Name, err)
		}
		if !h.ModTime.Equal(testEpoch) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" ||
			len(h.PAXRecords) != 0 || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s %s: header not fixed: %+v", what, h.Name, h)
		}
		if len(names) > 0 && names[len(names)-1] >= h.Name {
			t.Errorf("%s: %s comes after %s", what, h.Name, names[len(names)-1])
		}
		names = append(names, h.Name)
		if each != nil {
			each(h, body)
		}
	}
	return names
}

func globBlobs(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		if strings.HasPrefix(n, "blobs/sha256/") && n != "blobs/sha256/" {
			n = "blobs/sha256/*"
		}
		out[i] = n
	}
	return out
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
		{"dynamic", replace("multus-daemon", func(t *testing.T) []byte { return fakeELF(t, elf.EM_X86_64, true, "") }),
			[]string{"multus-daemon is dynamically linked", "CGO_ENABLED=0"}},
		{"arm64", replace("multus-shim", func(t *testing.T) []byte { return fakeELF(t, elf.EM_AARCH64, false, "") }),
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
