// Command nodeimages writes the two images a test node runs without a registry, as
// OCI image archives that `ctr -n k8s.io images import` takes:
//
//   - pause.tar: the pod sandbox image, the static program of ./pause alone;
//   - toolbox.tar: a small image for test pods, Debian's static busybox with a link
//     for every applet it provides (sh, ip, ping, sleep, cat, nc, wget, ...).
//
// hack/testbed.sh node builds ./pause and runs this command. Every timestamp is the
// epoch and every list is sorted, so the same inputs give the same bytes.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/polynet-cni/polynet/tools/scratchimage"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "nodeimages: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("nodeimages", flag.ContinueOnError)
	out := fs.String("out", "", "folder the archives are written to")
	pauseBin := fs.String("pause-bin", "", "the static pause program (go build ./tools/nodeimages/pause)")
	pauseRef := fs.String("pause-ref", "", "reference of the pause image, such as polynet.test/pause:3.10")
	busybox := fs.String("busybox", "/bin/busybox", "a statically linked busybox (Debian's busybox-static)")
	toolboxRef := fs.String("toolbox-ref", "", "reference of the toolbox image, such as polynet.test/toolbox:1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, f := range []struct{ name, value string }{
		{"-out", *out}, {"-pause-bin", *pauseBin}, {"-pause-ref", *pauseRef}, {"-toolbox-ref", *toolboxRef},
	} {
		if f.value == "" {
			return fmt.Errorf("%s is required", f.name)
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	pause, err := PauseImage(*pauseBin)
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	if err := WriteArchive(filepath.Join(*out, "pause.tar"), pause, *pauseRef); err != nil {
		return err
	}
	applets, err := busyboxApplets(*busybox)
	if err != nil {
		return err
	}
	toolbox, err := ToolboxImage(*busybox, applets)
	if err != nil {
		return fmt.Errorf("toolbox image: %w", err)
	}
	if err := WriteArchive(filepath.Join(*out, "toolbox.tar"), toolbox, *toolboxRef); err != nil {
		return err
	}
	for _, ref := range []string{*pauseRef, *toolboxRef} {
		fmt.Printf("wrote %s\n", ref)
	}
	return nil
}

// busyboxApplets asks busybox where each of its applets is installed ("bin/sh",
// "usr/bin/wget", ...). Names without a folder (linuxrc) are left out.
func busyboxApplets(busybox string) ([]string, error) {
	if err := scratchimage.CheckStatic(busybox); err != nil {
		return nil, fmt.Errorf("%w (install Debian's busybox-static)", err)
	}
	outb, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", busybox, err)
	}
	var applets []string
	for _, l := range strings.Fields(string(outb)) {
		if strings.Contains(l, "/") {
			applets = append(applets, l)
		}
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("%s --list-full named no applets", busybox)
	}
	return applets, nil
}
