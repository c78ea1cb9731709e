package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWrite replaces a file with the mode asked, leaves no temporary file, and
// fails cleanly (old content kept, no temporary left) when it cannot rename.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	info, _ := os.Stat(path)
	if err != nil || string(data) != "new" || info.Mode().Perm() != 0o600 {
		t.Errorf("after Write: %q %v %v", data, info.Mode().Perm(), err)
	}
	blocked := filepath.Join(dir, "dir")
	if err := os.MkdirAll(filepath.Join(blocked, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(blocked, []byte("x"), 0o600); err == nil {
		t.Error("Write over a non-empty folder succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("folder holds %d entries, want f.json and dir: a temporary file was left", len(entries))
	}
}
