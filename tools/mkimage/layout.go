package main

import (
	"archive/tar"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
)

// Binaries are the programs the image carries, by file name in -bin, all of them
// under BinPath: upstream's thin and thick images carry the same set there.
var Binaries = []string{"multus", "multus-shim", "multus-daemon", "install_multus", "thin_entrypoint", "passthru"}

// BinPath is where the binaries live in the image, upstream's folder: the install
// containers of upstream's manifests copy from it.
const BinPath = "usr/src/multus-cni/bin"

// rootLinks are the upstream thin image's entrypoints, at the root of the file
// system. They are relative symbolic links into BinPath rather than second copies,
// so the layer carries each binary once; the kernel resolves them inside the
// container's root when they are exec'd, and they resolve the same way in an
// unpacked copy of the layer.
var rootLinks = []string{"install_multus", "thin_entrypoint"}

// entry is one member of the layer: a folder, a regular file read from source, or a
// symbolic link to target. Names are relative to the root, without a trailing slash.
type entry struct {
	name   string
	kind   byte
	mode   int64
	source string
	target string
}

// layout returns the image's file tree, sorted by name, so that every folder comes
// before what it holds. It fails, naming each file, when a binary is missing or is
// not a static linux/amd64 executable: an image without one of them, or with one
// that needs a dynamic loader the image does not have, would only fail on a node.
func layout(binDir string) ([]entry, error) {
	entries := []entry{
		dir("etc", 0o755), // where the runtime mounts hosts, hostname and resolv.conf
		dir("run", 0o755),
		dir("tmp", 0o1777),
		dir("usr", 0o755),
		dir("usr/src", 0o755),
		dir("usr/src/multus-cni", 0o755),
		dir(BinPath, 0o755),
		dir("var", 0o755),
		// The runtime hands the daemon netns paths under /var/run/netns.
		{name: "var/run", kind: tar.TypeSymlink, mode: 0o777, target: "../run"},
	}
	for _, l := range rootLinks {
		entries = append(entries, entry{name: l, kind: tar.TypeSymlink, mode: 0o777, target: path.Join(BinPath, l)})
	}
	var errs []error
	for _, b := range Binaries {
		src := filepath.Join(binDir, b)
		if err := checkBinary(src); err != nil {
			errs = append(errs, err)
			continue
		}
		entries = append(entries, entry{name: path.Join(BinPath, b), kind: tar.TypeReg, mode: 0o755, source: src})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w\n(run `make build` first; every one of %v is needed)", err, Binaries)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries, nil
}

func dir(name string, mode int64) entry {
	return entry{name: name, kind: tar.TypeDir, mode: mode}
}

// checkBinary makes sure src is a regular file holding a 64-bit x86 ELF executable
// that asks for no program interpreter, which is what CGO_ENABLED=0 builds.
func checkBinary(src string) error {
	info, err := os.Stat(src)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("missing binary %s", src)
	}
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("binary %s is not a regular file (%s)", src, info.Mode().Type())
	}
	f, err := elf.Open(src)
	if err != nil {
		return fmt.Errorf("binary %s is not an ELF executable: %w", src, err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("binary %s is for %s %s, the image is linux/amd64", src, f.Class, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("binary %s is dynamically linked; the image has no C library: build it with CGO_ENABLED=0 (make build)", src)
		}
	}
	return nil
}
