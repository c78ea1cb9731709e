package delegate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// chrootRoot makes a root with a plugin folder, /opt/cni/bin, holding "good"
// and sub/evil, and, outside it, /opt/bin/evil and /bin/evil: binaries a
// plugin type with a path in it would reach.
func chrootRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, p := range []string{"opt/cni/bin/good", "opt/cni/bin/sub/evil", "opt/bin/evil", "bin/evil"} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestChrootFindInPath proves that ChrootExec finds a plugin only as a plain
// file name in the plugin folders, refusing what libcni's invoke.FindInPath
// refuses (CVE-2021-20206: a "type" such as "../../bin/evil" must never reach
// exec) and the names that are no file name at all.
func TestChrootFindInPath(t *testing.T) {
	root := chrootRoot(t)
	paths := []string{"/opt/cni/bin"}
	tests := []struct {
		plugin  string
		paths   []string
		want    string
		wantErr string
	}{
		{plugin: "good", paths: paths, want: "/opt/cni/bin/good"},
		{plugin: "missing", paths: paths, wantErr: "failed to find plugin"},
		{plugin: "../../bin/evil", paths: paths, wantErr: "invalid plugin name"},
		{plugin: "../../../bin/evil", paths: paths, wantErr: "invalid plugin name"},
		{plugin: "/bin/evil", paths: paths, wantErr: "invalid plugin name"},
		{plugin: "sub/evil", paths: paths, wantErr: "invalid plugin name"},
		{plugin: "..", paths: paths, wantErr: "invalid plugin name"},
		{plugin: "", paths: paths, wantErr: "no plugin name"},
		{plugin: "good", wantErr: "no paths"},
	}
	for _, tt := range tests {
		t.Run(tt.plugin, func(t *testing.T) {
			got, err := ChrootExec{Root: root}.FindInPath(tt.plugin, tt.paths)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Errorf("FindInPath(%q) = %q, %v; want %q", tt.plugin, got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("FindInPath(%q) = %q, %v; want an error saying %q", tt.plugin, got, err, tt.wantErr)
			}
		})
	}
}

// spyExec is ChrootExec with its process start recorded instead of made.
type spyExec struct {
	ChrootExec
	ran []string
}

func (s *spyExec) ExecPlugin(_ context.Context, path string, _ []byte, _ []string) ([]byte, error) {
	s.ran = append(s.ran, path)
	return []byte(`{"cniVersion":"1.0.0"}`), nil
}

// TestChrootRefusesPathTypesThroughLibcni drives libcni with the chroot
// executor and configurations whose "type" holds a path, as a caller that
// skips List's check would: nothing is executed, and the error is the
// refusal.
func TestChrootRefusesPathTypesThroughLibcni(t *testing.T) {
	root := chrootRoot(t)
	for _, typ := range []string{"../../bin/evil", "../../../bin/evil", "sub/evil"} {
		t.Run(typ, func(t *testing.T) {
			spy := &spyExec{ChrootExec: ChrootExec{Root: root}}
			list, err := libcni.NetworkConfFromBytes([]byte(`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"` + typ + `"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			cni := libcni.NewCNIConfigWithCacheDir([]string{"/opt/cni/bin"}, t.TempDir(), spy)
			rt := &libcni.RuntimeConf{ContainerID: "c1", NetNS: "/var/run/netns/c1", IfName: "net1"}
			_, err = cni.AddNetworkList(context.Background(), list, rt)
			if len(spy.ran) != 0 {
				t.Errorf("libcni executed %v for type %q", spy.ran, typ)
			}
			if err == nil || !strings.Contains(err.Error(), "invalid plugin name") {
				t.Errorf("ADD of type %q: %v, want the refusal", typ, err)
			}
		})
	}
}
