package testbed

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// OurImage builds this repository's image archive the way `make image` does,
// from binaries built for the tests, and returns its path. It carries the tags
// TestBuildVersion and snapshot (the manifests' tag).
func OurImage(tb testing.TB) string {
	tb.Helper()
	b := Require(tb)
	bins := BinDir(tb, "multus", "multus-shim", "multus-daemon", "passthru", "install_multus", "thin_entrypoint", "multus-cert-approver")
	out := tb.TempDir()
	cmd := exec.Command("go", "run", "./tools/mkimage", "-bin", bins, "-out", out, "-version", TestBuildVersion,
		"-revision", TestBuildCommit, "-epoch", "0")
	cmd.Dir = b.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building the image: %v\n%s", err, msg)
	}
	matches, _ := filepath.Glob(filepath.Join(out, "polynet-*.tar"))
	if len(matches) != 1 {
		tb.Fatalf("the image builder wrote %v", matches)
	}
	return matches[0]
}
