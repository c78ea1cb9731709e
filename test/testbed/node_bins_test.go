package testbed

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestNodeBinariesAnswerTheirPinnedVersions checks what `hack/testbed.sh node`
// installs: every binary runs and reports the version pinned in hack/versions.env,
// and each image archive's index.json names the pinned reference.
func TestNodeBinariesAnswerTheirPinnedVersions(t *testing.T) {
	b, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{b.KubeControllerManager(), b.KubeScheduler(), b.Kubelet(), b.Kubectl(),
		b.Containerd(), b.ContainerdShim(), b.Ctr(), b.Runc(), b.PauseImage(), b.ToolboxImage()} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("the node's binaries are not installed (%v): run `hack/testbed.sh node`", err)
		}
	}
	kube, containerd := b.Versions["KUBERNETES_VERSION"], b.Versions["CONTAINERD_VERSION"]
	checks := []struct {
		name string
		args []string
		want string
	}{
		{b.KubeControllerManager(), []string{"--version"}, "Kubernetes " + kube + "\n"},
		{b.KubeScheduler(), []string{"--version"}, "Kubernetes " + kube + "\n"},
		{b.Kubelet(), []string{"--version"}, "Kubernetes " + kube + "\n"},
		{b.Containerd(), []string{"--version"}, " " + containerd + " "},
		{b.Ctr(), []string{"--version"}, " " + containerd + "\n"},
		{b.ContainerdShim(), []string{"-v"}, "Version:  " + containerd + "\n"},
		{b.Runc(), []string{"--version"}, "runc version "},
	}
	for _, c := range checks {
		t.Run(c.name[strings.LastIndex(c.name, "/")+1:], func(t *testing.T) {
			t.Parallel()
			if out := runVersion(t, c.name, c.args...); !strings.Contains(out, c.want) {
				t.Errorf("%s %s said %q, want %q in it", c.name, strings.Join(c.args, " "), out, c.want)
			}
		})
	}
	t.Run("kubectl", func(t *testing.T) {
		t.Parallel()
		// What `kubectl version` parses: the client's version with numeric parts.
		var v struct {
			ClientVersion struct{ Major, Minor, GitVersion, GitTreeState string }
		}
		out := runVersion(t, b.Kubectl(), "version", "--client", "--output=json")
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("kubectl version: %v in %q", err, out)
		}
		c := v.ClientVersion
		if c.GitVersion != kube || c.Major != "1" || !strings.HasPrefix(kube, "v1."+c.Minor+".") || c.GitTreeState != "clean" {
			t.Errorf("kubectl's client version is %+v, want %s", c, kube)
		}
	})
	for _, img := range []struct{ path, ref string }{
		{b.PauseImage(), b.PauseImageRef()},
		{b.ToolboxImage(), b.ToolboxImageRef()},
	} {
		t.Run(img.ref, func(t *testing.T) {
			t.Parallel()
			names, err := archiveImageNames(img.path)
			if err != nil {
				t.Fatal(err)
			}
			if len(names) != 1 || names[0] != img.ref {
				t.Errorf("%s names %q, want %s", img.path, names, img.ref)
			}
		})
	}
}

func runVersion(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// archiveImageNames reads index.json from an OCI image archive and returns the
// io.containerd.image.name of each entry, the names `ctr images import` gives.
func archiveImageNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, errors.New("no index.json")
		}
		if err != nil {
			return nil, err
		}
		if hdr.Name != "index.json" {
			continue
		}
		var index struct {
			Manifests []struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		if err := json.NewDecoder(tr).Decode(&index); err != nil {
			return nil, err
		}
		var names []string
		for _, m := range index.Manifests {
			names = append(names, m.Annotations["io.containerd.image.name"])
		}
		return names, nil
	}
}
