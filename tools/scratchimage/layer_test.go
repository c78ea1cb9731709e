package scratchimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/tools/scratchimage/imagetest"
)

var testEpoch = time.Unix(1_700_000_000, 0).UTC()

// readTar reads every member of a tar, failing the test on any header that is not
// fixed (the epoch, owner 0:0 without names, no PAX records, USTAR) and on names
// out of order.
func readTar(t *testing.T, r io.Reader) []imagetest.Member {
	t.Helper()
	members, err := imagetest.ReadTar(r)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range members {
		h := m.Header
		if !h.ModTime.Equal(testEpoch) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" ||
			len(h.PAXRecords) != 0 || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || h.Format != tar.FormatUSTAR {
			t.Errorf("%s: header not fixed: %+v", h.Name, h)
		}
		if i > 0 && members[i-1].Header.Name >= h.Name {
			t.Errorf("%s comes after %s", h.Name, members[i-1].Header.Name)
		}
	}
	return members
}

func readLayer(t *testing.T, data []byte) []imagetest.Member {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Header.Name != "" || !zr.Header.ModTime.IsZero() || zr.Header.Comment != "" || zr.Header.Extra != nil {
		t.Errorf("gzip header carries %+v", zr.Header)
	}
	return readTar(t, zr)
}

// sourceFile writes content to a new file with a mode and a time that must not show
// in a layer.
func sourceFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "source")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := os.Chtimes(p, now, now); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLayerIsFixed gives entries out of order and without their parent folders, and
// expects them sorted, the folders added, every header fixed, and two layers of the
// same entries byte for byte the same.
func TestLayerIsFixed(t *testing.T) {
	entries := []Entry{
		Symlink("var/run", "../run"),
		FileFrom("usr/local/bin/tool", 0o755, sourceFile(t, "from a file")),
		File("etc/passwd", 0o644, []byte("root:x:0:0::/:/bin/sh\n")),
		Dir("tmp", 0o1777),
		Dir("etc", 0o700),
	}
	a, err := layer(entries, testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	b, err := layer(entries, testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two layers of the same entries differ")
	}
	if entries[0].Name != "var/run" {
		t.Error("layer reordered the caller's entries")
	}

	type got struct {
		Name, Linkname, Body string
		Type                 byte
		Mode                 int64
	}
	var members []got
	for _, m := range readLayer(t, a) {
		members = append(members, got{m.Header.Name, m.Header.Linkname, string(m.Body), m.Header.Typeflag, m.Header.Mode})
	}
	want := []got{
		{Name: "etc/", Type: tar.TypeDir, Mode: 0o700},
		{Name: "etc/passwd", Body: "root:x:0:0::/:/bin/sh\n", Type: tar.TypeReg, Mode: 0o644},
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
		{Name: "usr/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "usr/local/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "usr/local/bin/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "usr/local/bin/tool", Body: "from a file", Type: tar.TypeReg, Mode: 0o755},
		{Name: "var/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "var/run", Linkname: "../run", Type: tar.TypeSymlink, Mode: 0o777},
	}
	if diff := cmp.Diff(want, members); diff != "" {
		t.Errorf("layer members (-want +got):\n%s", diff)
	}

	other, err := layer(entries, testEpoch.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, other) {
		t.Error("another epoch gave the same layer")
	}
}

func TestLayerRefusals(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"twice", []Entry{Dir("etc", 0o755), File("etc", 0o644, nil)}, "etc is in the image twice"},
		{"parent", []Entry{File("../etc/passwd", 0o644, nil)}, "not a path below the root"},
		{"absolute", []Entry{File("/etc/passwd", 0o644, nil)}, "not a path below the root"},
		{"trailing slash", []Entry{Dir("etc/", 0o755)}, "not a path below the root"},
		{"root", []Entry{Dir(".", 0o755)}, "not a path below the root"},
		{"empty", []Entry{Dir("", 0o755)}, "not a path below the root"},
		{"data and source", []Entry{{Name: "f", Type: tar.TypeReg, Data: []byte("x"), Source: "/etc/hostname"}}, "both data and a source"},
		{"missing source", []Entry{FileFrom("bin/tool", 0o755, "/nonexistent/tool")}, "layer entry /bin/tool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := layer(tt.entries, testEpoch)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("layer = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
