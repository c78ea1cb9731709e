package testbed

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// helmTimeout bounds one helm invocation; rendering a chart takes well under a
// second, so only a hung helm ever meets it.
const helmTimeout = 2 * time.Minute

// HelmTemplate renders the chart in chartDir with the test bed's helm, as
// `helm template <release> <chartDir> --namespace <namespace> <args...>`, and returns
// what helm printed on stdout: the manifest. helm runs with its home, cache, config
// and data folders in a temporary folder of the test, never the user's, and needs no
// network (no repositories, no dependency update). A failure fails the test with
// helm's stderr; so does anything helm prints on stderr when it succeeds, since
// that is a warning about the chart.
func HelmTemplate(tb testing.TB, chartDir, release, namespace string, args ...string) []byte {
	tb.Helper()
	full := append([]string{"template", release, chartDir, "--namespace", namespace}, args...)
	stdout, stderr, err := runHelm(tb, full)
	if err != nil {
		tb.Fatalf("helm %s: %v\nstderr:\n%s", strings.Join(full, " "), err, stderr)
	}
	if len(bytes.TrimSpace(stderr)) > 0 {
		tb.Errorf("helm %s succeeded with output on stderr:\n%s", strings.Join(full, " "), stderr)
	}
	return stdout
}

// HelmLint runs `helm lint --strict <chartDir> <args...>`, which fails on warnings as
// on errors, and returns its report. A failure fails the test with the report.
func HelmLint(tb testing.TB, chartDir string, args ...string) []byte {
	tb.Helper()
	full := append([]string{"lint", "--strict", chartDir}, args...)
	stdout, stderr, err := runHelm(tb, full)
	if err != nil {
		tb.Fatalf("helm %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(full, " "), err, stdout, stderr)
	}
	return stdout
}

// runHelm runs the test bed's helm in an environment of its own.
func runHelm(tb testing.TB, args []string) (stdout, stderr []byte, err error) {
	tb.Helper()
	b, err := Load()
	if err != nil {
		tb.Fatalf("test bed: %v", err)
	}
	if _, err := os.Stat(b.Helm()); err != nil {
		tb.Fatalf("helm not installed (%v): run `make testbed` or `hack/testbed.sh`", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), helmTimeout)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, b.Helm(), args...)
	cmd.Env = helmEnv(tb.TempDir())
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}

// helmEnv is the whole environment of a helm run: every folder helm reads or writes
// lies under home, and nothing of the caller's environment but PATH and TMPDIR
// passes, so neither the user's repositories, plugins, registry logins or
// kubeconfig nor stray HELM_* variables change what a test sees.
func helmEnv(home string) []string {
	env := []string{
		"HOME=" + home,
		"XDG_CACHE_HOME=" + filepath.Join(home, "cache"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_DATA_HOME=" + filepath.Join(home, "data"),
		"HELM_CACHE_HOME=" + filepath.Join(home, "cache", "helm"),
		"HELM_CONFIG_HOME=" + filepath.Join(home, "config", "helm"),
		"HELM_DATA_HOME=" + filepath.Join(home, "data", "helm"),
		"HELM_PLUGINS=" + filepath.Join(home, "data", "helm", "plugins"),
		"HELM_REGISTRY_CONFIG=" + filepath.Join(home, "config", "helm", "registry", "config.json"),
		"HELM_REPOSITORY_CACHE=" + filepath.Join(home, "cache", "helm", "repository"),
		"HELM_REPOSITORY_CONFIG=" + filepath.Join(home, "config", "helm", "repositories.yaml"),
		// A kubeconfig that does not exist: `helm template` needs no cluster, and
		// must not read the user's.
		"KUBECONFIG=" + filepath.Join(home, "kubeconfig"),
	}
	for _, k := range []string{"PATH", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
