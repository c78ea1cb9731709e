package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/test/testbed"
)

const binPath = "usr/src/multus-cni/bin"

// node is what the test sees of one path of the unpacked tree.
type node struct {
	Kind   string // "dir", "file" or "symlink"
	Mode   fs.FileMode
	Target string
}

// wantTree is the image's whole file tree: upstream's layout, and nothing else.
func wantTree() map[string]node {
	dir := node{Kind: "dir", Mode: 0o755}
	tree := map[string]node{
		"etc":                dir,
		"run":                dir,
		"tmp":                {Kind: "dir", Mode: 0o777 | fs.ModeSticky},
		"usr":                dir,
		"usr/src":            dir,
		"usr/src/multus-cni": dir,
		binPath:              dir,
		"var":                dir,
		"var/run":            {Kind: "symlink", Target: "../run"},
		"install_multus":     {Kind: "symlink", Target: binPath + "/install_multus"},
		"thin_entrypoint":    {Kind: "symlink", Target: binPath + "/thin_entrypoint"},
	}
	for _, b := range binaries {
		tree[binPath+"/"+b] = node{Kind: "file", Mode: 0o755}
	}
	return tree
}

// unpackLayer extracts the gzip-compressed layer into a new folder, as a runtime's
// snapshotter would, and returns the folder. Every member must be owned by 0:0,
// carry no user or group name, and be dated at the epoch.
func unpackLayer(t *testing.T, layer []byte) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return root
		}
		if err != nil {
			t.Fatalf("layer: %v", err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !filepath.IsLocal(name) || filepath.Clean(name) != name {
			t.Fatalf("layer member %q is not a clean relative path", h.Name)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || h.ModTime.Unix() != epoch {
			t.Errorf("layer member %s: owner %d:%d (%q:%q), time %v; want 0:0, no names, the epoch",
				h.Name, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime)
		}
		if err := extract(filepath.Join(root, name), h, tr); err != nil {
			t.Fatalf("extracting %s: %v", h.Name, err)
		}
	}
}

func extract(path string, h *tar.Header, r io.Reader) error {
	mode := h.FileInfo().Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetuid | fs.ModeSetgid)
	switch h.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(path, 0o700); err != nil {
			return err
		}
	case tar.TypeReg:
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case tar.TypeSymlink:
		return os.Symlink(h.Linkname, path)
	default:
		return errors.New("unexpected member type " + string(h.Typeflag))
	}
	return os.Chmod(path, mode)
}

// checkTree compares the unpacked tree with wantTree, path by path, and each
// binary with the one the builder was given.
func checkTree(t *testing.T, root, binDir string) {
	t.Helper()
	got := map[string]node{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		n := node{Mode: info.Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetuid | fs.ModeSetgid)}
		switch {
		case info.IsDir():
			n.Kind = "dir"
		case info.Mode().IsRegular():
			n.Kind = "file"
		case info.Mode()&fs.ModeSymlink != 0:
			n.Kind, n.Mode = "symlink", 0
			n.Target, err = os.Readlink(path)
		default:
			n.Kind = info.Mode().Type().String()
		}
		got[filepath.ToSlash(rel)] = n
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantTree(), got); diff != "" {
		t.Errorf("image file tree (-want +got):\n%s", diff)
	}
	for _, b := range binaries {
		want, err1 := os.ReadFile(filepath.Join(binDir, b))
		have, err2 := os.ReadFile(filepath.Join(root, binPath, b))
		if err := errors.Join(err1, err2); err != nil || !bytes.Equal(want, have) {
			t.Errorf("%s in the image is not the binary given (%d and %d bytes): %v", b, len(want), len(have), err)
		}
	}
}

// runFromTree runs every binary from the unpacked tree, the thin image's
// entrypoints through their links at the root.
func runFromTree(t *testing.T, root string) {
	tests := []struct {
		name  string
		path  string
		args  []string
		env   []string
		stdin string
		want  []string
	}{
		{"multus --version", binPath + "/multus", []string{"--version"}, nil, "",
			[]string{"multus version " + testbed.TestBuildVersion}},
		{"multus-shim --version", binPath + "/multus-shim", []string{"--version"}, nil, "",
			[]string{"multus-shim version " + testbed.TestBuildVersion}},
		{"multus-daemon --version", binPath + "/multus-daemon", []string{"--version"}, nil, "",
			[]string{"multus-daemon version " + testbed.TestBuildVersion}},
		{"multus-cert-approver --version", binPath + "/multus-cert-approver", []string{"--version"}, nil, "",
			[]string{"multus-cert-approver version " + testbed.TestBuildVersion}},
		{"passthru VERSION", binPath + "/passthru", nil, []string{"CNI_COMMAND=VERSION"}, `{"cniVersion":"1.0.0"}`,
			[]string{`"supportedVersions"`}},
		{"install_multus --help (root link)", "install_multus", []string{"--help"}, nil, "",
			[]string{"Usage", "install_multus"}},
		{"thin_entrypoint --help (root link)", "thin_entrypoint", []string{"--help"}, nil, "",
			[]string{"Usage", "thin_entrypoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A bound, not a wait: a binary that hangs instead of answering fails.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(root, tt.path), tt.args...)
			cmd.Dir = root
			cmd.Env = append([]string{"PATH=" + filepath.Join(root, binPath)}, tt.env...)
			cmd.Stdin = strings.NewReader(tt.stdin)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", tt.name, err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("%s printed no %q:\n%s", tt.name, w, out)
				}
			}
			if tt.name == "passthru VERSION" {
				var v struct {
					SupportedVersions []string `json:"supportedVersions"`
				}
				if err := json.Unmarshal(out, &v); err != nil || !slices.Contains(v.SupportedVersions, "1.0.0") {
					t.Errorf("passthru VERSION answered %s (%v), want 1.0.0 among its versions", out, err)
				}
			}
		})
	}
}
