package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is every timestamp in the images and the archives.
var epoch = time.Unix(0, 0).UTC()

// node is one member of an image's only layer: a folder, a file or a symbolic link.
// Names are relative to the root, without a trailing slash.
type node struct {
	name   string
	kind   byte
	mode   int64
	data   []byte
	target string
}

func folder(name string, mode int64) node { return node{name: name, kind: tar.TypeDir, mode: mode} }

func file(name string, mode int64, data []byte) node {
	return node{name: name, kind: tar.TypeReg, mode: mode, data: data}
}

func symlink(name, target string) node {
	return node{name: name, kind: tar.TypeSymlink, mode: 0o777, target: target}
}

// PauseImage is the sandbox image: the pause program at /pause, run as the
// unprivileged user 65535, as Kubernetes' own pause image does.
func PauseImage(pauseBin string) (v1.Image, error) {
	data, err := readStatic(pauseBin)
	if err != nil {
		return nil, err
	}
	return newImage([]node{file("pause", 0o755, data)}, v1.Config{
		Entrypoint: []string{"/pause"},
		User:       "65535:65535",
		WorkingDir: "/",
	}, "tools/nodeimages: /pause")
}

// ToolboxImage is the image of test pods: busybox at /bin/busybox and a relative
// link to it at each applet's path (applets as `busybox --list-full` prints them),
// the usual folders, and an /etc/passwd and /etc/group naming root and nobody.
func ToolboxImage(busybox string, applets []string) (v1.Image, error) {
	data, err := readStatic(busybox)
	if err != nil {
		return nil, err
	}
	nodes := []node{
		folder("bin", 0o755), folder("dev", 0o755), folder("etc", 0o755), folder("home", 0o755),
		folder("proc", 0o555), folder("root", 0o700), folder("run", 0o755), folder("sbin", 0o755),
		folder("sys", 0o555), folder("tmp", 0o1777), folder("usr", 0o755), folder("usr/bin", 0o755),
		folder("usr/sbin", 0o755), folder("var", 0o755), folder("var/tmp", 0o1777),
		symlink("var/run", "../run"),
		file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")),
		file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")),
		file("bin/busybox", 0o755, data),
	}
	for _, a := range applets {
		a = path.Clean(a)
		if a == "bin/busybox" {
			continue
		}
		if !fs.ValidPath(a) || a == "." {
			return nil, fmt.Errorf("applet path %q is not a file below the root", a)
		}
		nodes = append(nodes, symlink(a, relativeTo(path.Dir(a), "bin/busybox")))
	}
	return newImage(nodes, v1.Config{
		Cmd:        []string{"sh"},
		Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		WorkingDir: "/",
	}, fmt.Sprintf("tools/nodeimages: busybox and %d applets", len(applets)))
}

// relativeTo is the relative path from folder dir to target, both relative to the
// root: "usr/bin" to "bin/busybox" is "../../bin/busybox", "bin" to it "busybox".
func relativeTo(dir, target string) string {
	if dir == path.Dir(target) {
		return path.Base(target)
	}
	up := ""
	for d := dir; d != "."; d = path.Dir(d) {
		up += "../"
	}
	return up + target
}

// newImage makes the single-layer OCI image of nodes with config, for linux/amd64.
// Nodes are sorted, their parent folders added, and duplicates refused.
func newImage(nodes []node, config v1.Config, history string) (v1.Image, error) {
	nodes, err := complete(nodes)
	if err != nil {
		return nil, err
	}
	layerData, err := layerTar(nodes)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerData)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: epoch}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      created,
		RootFS:       v1.RootFS{Type: "layers"},
		Config:       config,
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: created, CreatedBy: history},
	})
}

// complete adds the folders that hold nodes but are not listed, and sorts by name, so
// that a folder always comes before what it holds.
func complete(nodes []node) ([]node, error) {
	byName := map[string]bool{}
	for _, n := range nodes {
		if byName[n.name] {
			return nil, fmt.Errorf("%s is in the image twice", n.name)
		}
		byName[n.name] = true
	}
	for _, n := range nodes {
		for d := path.Dir(n.name); d != "."; d = path.Dir(d) {
			if !byName[d] {
				byName[d] = true
				nodes = append(nodes, folder(d, 0o755))
			}
		}
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].name < nodes[j].name })
	return nodes, nil
}

// layerTar is the gzip-compressed tar of nodes. Nothing in it depends on when or where
// it was made: times are the epoch, owners 0:0 without names, the format USTAR (no
// PAX access or change times), and the gzip header has neither a name nor a time.
func layerTar(nodes []node) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, n := range nodes {
		hdr := &tar.Header{
			Typeflag: n.kind,
			Name:     n.name,
			Linkname: n.target,
			Mode:     n.mode,
			Size:     int64(len(n.data)),
			ModTime:  epoch,
			Format:   tar.FormatUSTAR,
		}
		if n.kind == tar.TypeDir {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer entry /%s: %w", n.name, err)
		}
		if _, err := tw.Write(n.data); err != nil {
			return nil, fmt.Errorf("layer entry /%s: %w", n.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readStatic reads a program that must run in an image with no C library: a 64-bit
// x86 ELF executable that names no program interpreter.
func readStatic(p string) ([]byte, error) {
	if err := checkStatic(p); err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

func checkStatic(p string) error {
	info, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", p)
	}
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("%s is not an ELF executable: %w", p, err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("%s is for %s %s, the images are linux/amd64", p, f.Class, f.Machine)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; the image has no C library", p)
		}
	}
	return nil
}
