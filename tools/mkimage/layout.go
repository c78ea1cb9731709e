package main

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/polynet-cni/polynet/tools/scratchimage"
)

// Binaries are the programs the image carries, by file name in -bin, all of them
// under BinPath: upstream's thin and thick images carry the same set there.
var Binaries = []string{"multus", "multus-shim", "multus-daemon", "install_multus", "thin_entrypoint", "passthru", "multus-cert-approver"}

// BinPath is where the binaries live in the image, upstream's folder: the install
// containers of upstream's manifests copy from it.
const BinPath = "usr/src/multus-cni/bin"

// rootLinks are the upstream thin image's entrypoints, at the root of the file
// system. They are relative symbolic links into BinPath rather than second copies,
// so the layer carries each binary once; the kernel resolves them inside the
// container's root when they are exec'd, and they resolve the same way in an
// unpacked copy of the layer.
var rootLinks = []string{"install_multus", "thin_entrypoint"}

// layout returns the image's file tree; the layer sorts it by name. It fails, naming each file, when a binary is missing or is
// not a static linux/amd64 executable: an image without one of them, or with one
// that needs a dynamic loader the image does not have, would only fail on a node.
func layout(binDir string) ([]scratchimage.Entry, error) {
	entries := []scratchimage.Entry{
		scratchimage.Dir("etc", 0o755), // where the runtime mounts hosts, hostname and resolv.conf
		scratchimage.Dir("run", 0o755),
		scratchimage.Dir("tmp", 0o1777),
		scratchimage.Dir("usr", 0o755),
		scratchimage.Dir("usr/src", 0o755),
		scratchimage.Dir("usr/src/multus-cni", 0o755),
		scratchimage.Dir(BinPath, 0o755),
		scratchimage.Dir("var", 0o755),
		// The runtime hands the daemon netns paths under /var/run/netns.
		scratchimage.Symlink("var/run", "../run"),
	}
	for _, l := range rootLinks {
		entries = append(entries, scratchimage.Symlink(l, path.Join(BinPath, l)))
	}
	var errs []error
	for _, b := range Binaries {
		src := filepath.Join(binDir, b)
		if err := checkBinary(src); err != nil {
			errs = append(errs, err)
			continue
		}
		entries = append(entries, scratchimage.FileFrom(path.Join(BinPath, b), 0o755, src))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w\n(run `make build` first; every one of %v is needed)", err, Binaries)
	}
	return entries, nil
}

// checkBinary makes sure src is a static linux/amd64 executable, naming the file
// in the error and saying how to build it right.
func checkBinary(src string) error {
	err := scratchimage.CheckStatic(src)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("missing binary %s", src)
	case errors.Is(err, scratchimage.ErrDynamic):
		return fmt.Errorf("binary %w: build it with CGO_ENABLED=0 (make build)", err)
	}
	return fmt.Errorf("binary %w", err)
}
