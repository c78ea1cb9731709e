package hostfiles

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// deviceInfo is a device-info map as a device plugin writes it (D-4.0), with
// the whitespace of a hand-written file.
const deviceInfo = `{
  "type": "pci",
  "version": "1.1.0",
  "pci": { "pci-address": "0000:03:00.1" }
}`

func TestCopy(t *testing.T) {
	tests := []struct {
		name    string
		source  *string // nil: no source file
		wantErr bool
	}{
		{name: "D-4.2.1 content copied, folder created", source: ptr(deviceInfo)},
		{name: "D-4.1 missing source is not an error"},
		{name: "D-4.0 non-JSON source is an error", source: ptr("not json {"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := podnet.DevicePluginInfoFile(dir, "intel.com/sriov", "0000:03:00.1")
			if tt.source != nil {
				if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(src, []byte(*tt.source), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			dst := podnet.AttachmentInfoFile(dir, "ns1", "sriov", "c1", "net1")
			err := (Files{}).CopyDeviceInfo(src, dst)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Copy error = %v, want error %v", err, tt.wantErr)
			}
			data, readErr := os.ReadFile(dst)
			if tt.source == nil || tt.wantErr {
				if !errors.Is(readErr, os.ErrNotExist) {
					t.Errorf("attachment file after Copy: read error %v, content %q; want no file", readErr, data)
				}
				if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 0 {
					t.Errorf("attachment folder has %d entries, want none (no temp file left)", len(entries))
				}
				return
			}
			if readErr != nil {
				t.Fatalf("reading the attachment file: %v", readErr)
			}
			if diff := cmp.Diff(*tt.source, string(data)); diff != "" {
				t.Errorf("copied content (-want +got):\n%s", diff)
			}
			if _, err := os.Stat(dst + ".tmp"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("temporary file left behind: %v", err)
			}
		})
	}
}

// TestCopyOverwrites proves that a second Copy for the same attachment (an ADD
// retried) replaces the file's content rather than failing.
func TestCopyOverwrites(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.json")
	dst := filepath.Join(dir, "cni", "f")
	for _, content := range []string{`{"type":"pci"}`, `{"type":"vdpa"}`} {
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := (Files{}).CopyDeviceInfo(src, dst); err != nil {
			t.Fatalf("Copy: %v", err)
		}
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("content = %s, want %s", got, content)
		}
	}
}

// TestRead proves D-6.1.1: Read returns the attachment file's map compacted, for
// the network-status "device-info" key; nil without error for a missing file or
// an empty path (an attachment with no device); an error for a file that is not
// JSON.
func TestRead(t *testing.T) {
	tests := []struct {
		name    string
		content *string // nil: no file
		empty   bool    // call with path ""
		want    string
		wantErr bool
	}{
		{name: "D-6.1.1 content compacted", content: ptr(deviceInfo), want: `{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:03:00.1"}}`},
		{name: "missing file is nil"},
		{name: "empty path is nil", empty: true},
		{name: "non-JSON file is an error", content: ptr("{broken"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cni", "ns1-net-c1_net1")
			if tt.content != nil {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(*tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.empty {
				path = ""
			}
			got, err := (Files{}).ReadDeviceInfo(path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Read error = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if tt.want == "" {
				if got != nil {
					t.Errorf("Read = %s, want nil", got)
				}
				return
			}
			if string(got) != tt.want {
				t.Errorf("Read = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestRemove proves D-4.2.1's DEL duty: Remove deletes the attachment's file, and
// a missing file or an empty path (no device) is not an error, so a DEL retried
// after the file went still succeeds.
func TestRemove(t *testing.T) {
	tests := []struct {
		name   string
		exists bool
		empty  bool
	}{
		{name: "D-4.2.1 file deleted", exists: true},
		{name: "missing file tolerated"},
		{name: "empty path tolerated", empty: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ns1-net-c1_net1")
			if tt.exists {
				if err := os.WriteFile(path, []byte(`{}`), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.empty {
				path = ""
			}
			if err := (Files{}).RemoveDeviceInfo(path); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if path == "" {
				return
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("file after Remove: stat error %v, want not exist", err)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// bigDeviceInfo is a JSON object of n bytes: a device-info map padded with a
// long field.
func bigDeviceInfo(n int) string {
	head := `{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:03:00.1"},"pad":"`
	tail := `"}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

// TestDeviceInfoCap proves that device-info files are read with a bound of 64
// KiB, both the device plugin's file copied before ADD (D-4.2.1) and the
// attachment's read into network-status after it (D-6.1.1): the spec's
// device-info maps (D-3.1) are a handful of short strings, so a larger file is
// not one, and reading it whole would let whoever writes it grow the daemon's
// memory and the pod's annotation without limit. A file at the bound is
// accepted; one byte more is an error naming the file and the bound, and the
// copy leaves no attachment file.
func TestDeviceInfoCap(t *testing.T) {
	const limit = 64 << 10
	for _, tt := range []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"at the bound", limit, false},
		{"one byte over", limit + 1, true},
		{"a megabyte", 1 << 20, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := podnet.DevicePluginInfoFile(dir, "intel.com/sriov", "0000:03:00.1")
			dst := podnet.AttachmentInfoFile(dir, "ns1", "sriov", "c1", "net1")
			for _, p := range []string{src, dst} {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(src, []byte(bigDeviceInfo(tt.size)), 0o644); err != nil {
				t.Fatal(err)
			}
			err := (Files{}).CopyDeviceInfo(src, dst)
			checkCapError(t, "CopyDeviceInfo", err, tt.wantErr, src)
			if _, statErr := os.Stat(dst); tt.wantErr && !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("attachment file after a refused copy: %v, want none", statErr)
			}

			if err := os.WriteFile(dst, []byte(bigDeviceInfo(tt.size)), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := (Files{}).ReadDeviceInfo(dst)
			checkCapError(t, "ReadDeviceInfo", err, tt.wantErr, dst)
			if tt.wantErr && got != nil {
				t.Errorf("ReadDeviceInfo returned %d bytes with its error", len(got))
			}
			if !tt.wantErr && len(got) != tt.size {
				t.Errorf("ReadDeviceInfo returned %d bytes, want %d", len(got), tt.size)
			}
		})
	}
}

func checkCapError(t *testing.T, op string, err error, wantErr bool, file string) {
	t.Helper()
	if !wantErr {
		if err != nil {
			t.Errorf("%s: %v", op, err)
		}
		return
	}
	if err == nil {
		t.Errorf("%s of an oversized file succeeded, want an error naming the file and the bound", op)
		return
	}
	for _, want := range []string{file, "65536 bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s error %q does not name %s", op, err, want)
		}
	}
}
