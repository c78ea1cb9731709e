package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Binaries the tests build from this repository, by name, and their packages.
var buildable = map[string]string{
	"multus":               "./cmd/multus",
	"multus-shim":          "./cmd/multus-shim",
	"multus-daemon":        "./cmd/multus-daemon",
	"passthru":             "./cmd/passthru",
	"install_multus":       "./cmd/install_multus",
	"thin_entrypoint":      "./cmd/thin_entrypoint",
	"multus-cert-approver": "./cmd/multus-cert-approver",
	"recorder":             "./test/plugins/recorder",
}

// The version and commit that Binary links into what it builds, the way the
// Makefile links the real ones, so tests can check the link-time injection.
const (
	TestBuildVersion = "v0.0.0-test"
	TestBuildCommit  = "0123456789abcdef"
	buildinfoPkg     = "github.com/polynet-cni/polynet/internal/buildinfo"
)

var (
	builtMu  sync.Mutex
	builtDir string
	built    = map[string]string{}
)

// Binary builds one of this repository's binaries (multus, multus-shim,
// multus-daemon, recorder) once per test process, statically as `make build` does,
// and returns its path. All of them land in one folder, BinDir, which Main removes
// after the tests.
func Binary(tb testing.TB, name string) string {
	tb.Helper()
	path, err := buildBinary(name)
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

// BinDir builds the named binaries and returns the folder that holds them, to be
// put in CNI_PATH or a plugin conf's binDir.
func BinDir(tb testing.TB, names ...string) string {
	tb.Helper()
	var dir string
	for _, n := range names {
		dir = filepath.Dir(Binary(tb, n))
	}
	return dir
}

func buildBinary(name string) (string, error) {
	pkg, ok := buildable[name]
	if !ok {
		return "", fmt.Errorf("no buildable binary %q", name)
	}
	builtMu.Lock()
	defer builtMu.Unlock()
	if p, ok := built[name]; ok {
		return p, nil
	}
	b, err := Load()
	if err != nil {
		return "", err
	}
	if builtDir == "" {
		if builtDir, err = makeTempDir("bin"); err != nil {
			return "", err
		}
	}
	out := filepath.Join(builtDir, name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X "+buildinfoPkg+".Version="+TestBuildVersion+
		" -X "+buildinfoPkg+".Commit="+TestBuildCommit, "-o", out, pkg)
	cmd.Dir = b.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", name, err, msg)
	}
	built[name] = out
	return out, nil
}

// teardown stops the shared control plane and deletes the folder of built
// binaries; Main calls it after the last test.
func teardown() {
	stopSharedDaemon()
	stopShared()
	builtMu.Lock()
	defer builtMu.Unlock()
	if builtDir != "" {
		os.RemoveAll(builtDir)
		builtDir = ""
		built = map[string]string{}
	}
}
