package logging

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const mib = 1 << 20

// oldContent returns n bytes of recognizable log text.
func oldContent(n int) []byte {
	return bytes.Repeat([]byte("old line\n"), n/9+1)[:n]
}

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// openAndLog opens the log file as New does at time now and logs one line.
func openAndLog(t *testing.T, o Options, now time.Time, msg string) {
	t.Helper()
	o.Level, o.Now = "error", func() time.Time { return now }
	l, c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	l.Error(msg)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitMill(t, c)
}

func TestRotationThreshold(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		wantNames []string
	}{
		{"below", mib - 1, []string{"multus.log"}},
		{"at", mib, []string{"multus-2024-05-01T10-00-00.000.log", "multus.log"}},
		{"above", mib + 1, []string{"multus-2024-05-01T10-00-00.000.log", "multus.log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "multus.log")
			old := oldContent(tt.size)
			if err := os.WriteFile(path, old, 0o600); err != nil {
				t.Fatal(err)
			}
			openAndLog(t, Options{File: path, MaxSizeMB: 1}, clock, "new")
			if diff := cmp.Diff(tt.wantNames, listDir(t, dir)); diff != "" {
				t.Fatalf("folder (-want +got):\n%s", diff)
			}
			got := readFile(t, path)
			if len(tt.wantNames) == 1 {
				if !strings.HasPrefix(got, string(old)) || !strings.Contains(got[len(old):], "msg=new") {
					t.Errorf("file was not appended to")
				}
				return
			}
			if diff := cmp.Diff([]string{"new"}, messages(got)); diff != "" {
				t.Errorf("new file messages (-want +got):\n%s", diff)
			}
			if !bytes.Equal(old, []byte(readFile(t, filepath.Join(dir, tt.wantNames[0])))) {
				t.Errorf("backup does not hold the old content")
			}
		})
	}
}

func TestRotationDisabled(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "multus.log")
	if err := os.WriteFile(path, oldContent(mib), 0o600); err != nil {
		t.Fatal(err)
	}
	openAndLog(t, Options{File: path, MaxSizeMB: 0}, clock, "new")
	if diff := cmp.Diff([]string{"multus.log"}, listDir(t, dir)); diff != "" {
		t.Errorf("folder (-want +got):\n%s", diff)
	}
}

func TestRotationCompress(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "multus.log")
	old := oldContent(mib)
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	openAndLog(t, Options{File: path, MaxSizeMB: 1, Compress: true}, clock, "new")
	const backup = "multus-2024-05-01T10-00-00.000.log.gz"
	if diff := cmp.Diff([]string{backup, "multus.log"}, listDir(t, dir)); diff != "" {
		t.Fatalf("folder (-want +got):\n%s", diff)
	}
	f, err := os.Open(filepath.Join(dir, backup))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("backup is not gzip: %v", err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("backup is not valid gzip: %v", err)
	}
	if !bytes.Equal(old, got) {
		t.Errorf("uncompressed backup differs from the old content (%d bytes, want %d)", len(got), len(old))
	}
	if zr.Name != "multus-2024-05-01T10-00-00.000.log" {
		t.Errorf("gzip name = %q", zr.Name)
	}
}

// TestRotationPrune rotates once at clock, with other backups present, and
// checks which backups remain.
func TestRotationPrune(t *testing.T) {
	existing := []string{
		"multus-2024-04-30T10-00-00.000.log.gz",
		"multus-2024-04-28T10-00-00.000.log",
		"multus-2024-04-20T10-00-00.000.log.gz",
		"multus-2024-04-01T10-00-00.000.log",
	}
	others := []string{"multus.log.1", "multus-daemon.log", "other-2020-01-01T00-00-00.000.log"}
	const fresh = "multus-2024-05-01T10-00-00.000.log"
	tests := []struct {
		name       string
		maxBackups int
		maxAgeDays int
		want       []string
	}{
		{"no limits", 0, 0, []string{fresh, existing[0], existing[1], existing[2], existing[3]}},
		{"by count", 2, 0, []string{fresh, existing[0]}},
		{"by count, one", 1, 0, []string{fresh}},
		{"by age", 0, 5, []string{fresh, existing[0], existing[1]}},
		{"by age, exactly at limit kept", 0, 3, []string{fresh, existing[0], existing[1]}},
		{"by count and age", 2, 20, []string{fresh, existing[0]}},
		{"age stricter than count", 10, 2, []string{fresh, existing[0]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "multus.log")
			for _, name := range append(append([]string{"multus.log"}, existing...), others...) {
				size := 10
				if name == "multus.log" {
					size = mib
				}
				if err := os.WriteFile(filepath.Join(dir, name), oldContent(size), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			openAndLog(t, Options{File: path, MaxSizeMB: 1, MaxBackups: tt.maxBackups, MaxAgeDays: tt.maxAgeDays}, clock, "new")
			want := append(append(tt.want, others...), "multus.log")
			slices.Sort(want)
			if diff := cmp.Diff(want, listDir(t, dir)); diff != "" {
				t.Errorf("folder (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRotationRepeated rotates several times with an advancing clock and
// checks that the newest backups are kept, with their contents.
func TestRotationRepeated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "multus")
	for i := range 4 {
		if err := os.WriteFile(path, oldContent(mib), 0o600); err != nil {
			t.Fatal(err)
		}
		openAndLog(t, Options{File: path, MaxSizeMB: 1, MaxBackups: 2}, clock.Add(time.Duration(i)*time.Minute), fmt.Sprint("run", i))
	}
	want := []string{"multus", "multus-2024-05-01T10-02-00.000", "multus-2024-05-01T10-03-00.000"}
	if diff := cmp.Diff(want, listDir(t, dir)); diff != "" {
		t.Errorf("folder (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"run3"}, messages(readFile(t, path))); diff != "" {
		t.Errorf("file messages (-want +got):\n%s", diff)
	}
}

// TestRotationExistingBackup checks that a backup of the same name is never
// overwritten, and that the problem is logged as a warning.
func TestRotationExistingBackup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "multus.log")
	backup := filepath.Join(dir, "multus-2024-05-01T10-00-00.000.log")
	for name, content := range map[string]string{path: string(oldContent(mib)), backup: "precious\n"} {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var stderr bytes.Buffer
	l, c, err := New(Options{Level: "verbose", ToStderr: true, Stderr: &stderr, File: path, MaxSizeMB: 1, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("new")
	c.Close()
	waitMill(t, c)
	if got := readFile(t, backup); got != "precious\n" {
		t.Errorf("backup overwritten: %q", got)
	}
	want := fmt.Sprintf("time=2024-05-01T10:00:00.000Z level=INFO msg=new\n"+
		"time=2024-05-01T10:00:00.000Z level=WARN msg=\"log file rotation\" file=%s error=\"backup %s exists, not overwriting it\"\n", path, backup)
	if diff := cmp.Diff(want, stderr.String()); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
}

// TestRotationConcurrent opens a full log file from several goroutines at once,
// as concurrent multus processes do: one of them rotates, the others append to
// the fresh file, and no line is lost.
func TestRotationConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "multus.log")
	old := oldContent(mib)
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			l, c, err := New(Options{Level: "error", File: path, MaxSizeMB: 1, Compress: true, Now: func() time.Time {
				return clock.Add(time.Duration(i) * time.Millisecond)
			}})
			if err != nil {
				t.Error(err)
				return
			}
			l.Error(fmt.Sprint("writer", i))
			c.Close()
			waitMill(t, c)
		})
	}
	wg.Wait()
	names := listDir(t, dir)
	if len(names) != 2 || !strings.HasSuffix(names[0], ".log.gz") || names[1] != "multus.log" {
		t.Fatalf("folder = %v, want one compressed backup and multus.log", names)
	}
	got := messages(readFile(t, path))
	slices.Sort(got)
	var want []string
	for i := range n {
		want = append(want, fmt.Sprint("writer", i))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("file messages (-want +got):\n%s", diff)
	}
}
