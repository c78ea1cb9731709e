package logging

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var clock = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return clock }

// logAll logs one record at every level, with the level's name as message.
func logAll(l *slog.Logger) {
	ctx := context.Background()
	l.Debug("debug")
	l.Info("info")
	l.Warn("warn")
	l.Error("error")
	l.Log(ctx, LevelPanic, "panic")
}

// messages returns the msg of every text line in out.
func messages(out string) []string {
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if _, after, ok := strings.Cut(line, " msg="); ok {
			msg, _, _ := strings.Cut(after, " ")
			msgs = append(msgs, msg)
		}
	}
	return msgs
}

func TestNewLevels(t *testing.T) {
	tests := []struct {
		level string
		want  []string
	}{
		{"debug", []string{"debug", "info", "warn", "error", "panic"}},
		{"DEBUG", []string{"debug", "info", "warn", "error", "panic"}},
		{"verbose", []string{"info", "warn", "error", "panic"}},
		{"error", []string{"error", "panic"}},
		{"panic", []string{"panic"}},
		{"", []string{"panic"}},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			var buf bytes.Buffer
			l, c, err := New(Options{Level: tt.level, ToStderr: true, Stderr: &buf, Now: fixedNow})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			logAll(l)
			if diff := cmp.Diff(tt.want, messages(buf.String())); diff != "" {
				t.Errorf("logged messages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewUnknownLevel(t *testing.T) {
	_, _, err := New(Options{Level: "loud", ToStderr: true, Stderr: &bytes.Buffer{}})
	want := `logging: unknown level "loud"; want one of debug, verbose, error, panic`
	if err == nil || err.Error() != want {
		t.Errorf("New error = %v, want %s", err, want)
	}
}

func TestNewLineFormat(t *testing.T) {
	var buf bytes.Buffer
	l, _, err := New(Options{Level: "debug", ToStderr: true, Stderr: &buf, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	l.With("containerID", "abc").Info("attached", "network", "ns/net1")
	l.Log(context.Background(), LevelPanic, "giving up")
	want := "time=2024-05-01T10:00:00.000Z level=INFO msg=attached containerID=abc network=ns/net1\n" +
		"time=2024-05-01T10:00:00.000Z level=PANIC msg=\"giving up\"\n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

func TestNewSinks(t *testing.T) {
	tests := []struct {
		name       string
		toStderr   bool
		file       bool
		wantStderr bool
	}{
		{"stderr only", true, false, true},
		{"file only", false, true, false},
		{"both", true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			o := Options{Level: "error", ToStderr: tt.toStderr, Stderr: &stderr, Now: fixedNow}
			if tt.file {
				o.File = filepath.Join(t.TempDir(), "multus.log")
			}
			l, c, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			l.Error("boom")
			if err := c.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			const line = "time=2024-05-01T10:00:00.000Z level=ERROR msg=boom\n"
			wantStderr := ""
			if tt.wantStderr {
				wantStderr = line
			}
			if diff := cmp.Diff(wantStderr, stderr.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if tt.file {
				if diff := cmp.Diff(line, readFile(t, o.File)); diff != "" {
					t.Errorf("file (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestNewNoSink(t *testing.T) {
	var stderr bytes.Buffer
	l, c, err := New(Options{Level: "debug", Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if l.Handler() != slog.DiscardHandler {
		t.Errorf("handler = %T, want slog.DiscardHandler", l.Handler())
	}
	logAll(l)
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q, want nothing", stderr.String())
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestNewFileCreation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing", "folder")
	path := filepath.Join(dir, "multus.log")
	l, c, err := New(Options{Level: "error", File: path, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	l.Error("first")
	c.Close()
	for p, want := range map[string]os.FileMode{dir: os.ModeDir | 0o700, path: 0o600} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode() != want {
			t.Errorf("mode of %s = %v, want %v", p, info.Mode(), want)
		}
	}
	l, c, err = New(Options{Level: "error", File: path, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	l.Error("second")
	c.Close()
	if diff := cmp.Diff([]string{"first", "second"}, messages(readFile(t, path))); diff != "" {
		t.Errorf("file messages (-want +got):\n%s", diff)
	}
}

func TestNewFileError(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := New(Options{File: dir}); err == nil {
		t.Errorf("New with a folder as log file: no error")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestTeeCarriesOn(t *testing.T) {
	var buf bytes.Buffer
	n, err := tee{failWriter{}, &buf}.Write([]byte("line\n"))
	if err == nil || n != 0 {
		t.Errorf("Write = %d, %v; want 0 and an error", n, err)
	}
	if buf.String() != "line\n" {
		t.Errorf("second writer got %q, want the line", buf.String())
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
