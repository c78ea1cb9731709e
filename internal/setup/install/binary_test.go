package install

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// noTemps fails when Binary left a temporary file in dir.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestBinary(t *testing.T) {
	cases := []struct {
		name       string
		existing   string // "" for none
		existMode  os.FileMode
		want       Action
		wantWrites bool
	}{
		{name: "nothing there", want: Installed, wantWrites: true},
		{name: "same content and mode", existing: "new", existMode: 0o755, want: Unchanged},
		{name: "same content, other mode", existing: "new", existMode: 0o644, want: Replaced, wantWrites: true},
		{name: "other content", existing: "old", existMode: 0o755, want: Replaced, wantWrites: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, dest := t.TempDir(), t.TempDir()
			writeFile(t, filepath.Join(src, "multus-shim"), "new", 0o755)
			target := filepath.Join(dest, "multus-shim")
			var before os.FileInfo
			if tc.existing != "" {
				writeFile(t, target, tc.existing, tc.existMode)
				before, _ = os.Stat(target)
			}
			r, err := Binary(filepath.Join(src, "multus-shim"), dest)
			if err != nil {
				t.Fatal(err)
			}
			if r.Action != tc.want || r.Path != target || r.Size != 3 || len(r.SHA256) != 64 {
				t.Errorf("result %+v, want action %s", r, tc.want)
			}
			after, err := os.Stat(target)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(target)
			if string(data) != "new" || after.Mode().Perm() != 0o755 {
				t.Errorf("target %q mode %v", data, after.Mode().Perm())
			}
			if before != nil && os.SameFile(before, after) == tc.wantWrites {
				t.Errorf("target inode kept: %v, want a new file: %v", os.SameFile(before, after), tc.wantWrites)
			}
			noTemps(t, dest)
			if !strings.Contains(r.String(), string(tc.want)) || strings.Contains(r.String(), "\n") {
				t.Errorf("line %q", r.String())
			}
		})
	}
}

func TestBinaryErrors(t *testing.T) {
	src, dest := t.TempDir(), t.TempDir()
	if _, err := Binary(filepath.Join(src, "missing"), dest); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing source: %v", err)
	}
	writeFile(t, filepath.Join(src, "multus"), "new", 0o755)
	if _, err := Binary(filepath.Join(src, "multus"), filepath.Join(dest, "nope")); err == nil {
		t.Error("a missing destination folder gave no error")
	}
	if err := os.Mkdir(filepath.Join(dest, "multus"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Binary(filepath.Join(src, "multus"), dest); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a folder at the target: %v", err)
	}
	noTemps(t, dest)
}

// TestBinaryBusyTarget replaces an executable while it runs. Writing over it,
// as upstream's cp did, fails with "text file busy" (Multus #1221); Binary
// renames a new file into place instead: the running process goes on with the
// old file, and the next exec gets the new one.
func TestBinaryBusyTarget(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	src, dest := t.TempDir(), t.TempDir()
	old, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dest, "multus-shim")
	writeFile(t, target, string(old), 0o755)
	cmd := exec.Command(target, "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The kernel marks the file busy once exec has mapped it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := os.OpenFile(target, os.O_WRONLY, 0)
		if errors.Is(err, syscall.ETXTBSY) {
			break
		}
		if err == nil {
			f.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the running target never became busy: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	writeFile(t, filepath.Join(src, "multus-shim"), "#!/bin/sh\necho new\n", 0o755)
	r, err := Binary(filepath.Join(src, "multus-shim"), dest)
	if err != nil {
		t.Fatalf("installing over a running binary: %v", err)
	}
	t.Logf("install line: %s", r)
	if r.Action != Replaced || r.Busy != 1 {
		t.Errorf("result %+v, want replaced with 1 busy process", r)
	}
	if out, err := exec.Command(target).Output(); err != nil || string(out) != "new\n" {
		t.Errorf("the new file does not run: %q %v", out, err)
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/exe")
	if err != nil || !strings.HasSuffix(exe, "(deleted)") {
		t.Errorf("the running process's executable is %q (%v), want the old, unlinked file", exe, err)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the running process died: %v", err)
	}
	noTemps(t, dest)
}
