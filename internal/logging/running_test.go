package logging

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// patience bounds every wait on a condition: generous, since it is only
// reached when something is broken.
const patience = time.Minute

// testClock is a clock that moves only when told to, so that backup names and
// ages are known in advance.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// padding makes every line of fixedLine the same length.
var padding = strings.Repeat("x", 1000)

// logFixed logs line seq with l, all lines of the same length, lineLen.
func logFixed(l *slog.Logger, seq int) {
	l.Error("line", "seq", fmt.Sprintf("%05d", seq), "pad", padding)
}

// lineLen is the length of a logFixed record at level ERROR with a
// millisecond time stamp.
var lineLen = int64(len("time=2024-05-01T10:00:00.000Z level=ERROR msg=line seq=00000 pad=" + padding + "\n"))

// backupNames returns the backups of path in its folder, oldest first, and
// fails on anything else there but path itself.
func backupNames(t *testing.T, path string) []string {
	t.Helper()
	var names []string
	for _, name := range listDir(t, filepath.Dir(path)) {
		if name != filepath.Base(path) {
			names = append(names, name)
		}
	}
	return names
}

// TestRotateWhileRunning logs through one long-lived logger, as the daemon
// does, past maxSize: the file is rotated while it runs, each file holds at
// least maxSize bytes and less than one line more, and no line is lost.
func TestRotateWhileRunning(t *testing.T) {
	tests := []struct {
		name      string
		maxSizeMB int
		lines     int
	}{
		{"below max", 1, 500},
		{"past max once", 1, 1500},
		{"past max three times", 1, 3500},
		{"never rotated", 0, 3500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "multus.log")
			clk := &testClock{t: clock}
			l, c, err := New(Options{Level: "error", File: path, MaxSizeMB: tt.maxSizeMB, Now: clk.now})
			if err != nil {
				t.Fatal(err)
			}
			max := int64(tt.maxSizeMB) << 20
			for i := range tt.lines {
				logFixed(l, i)
				clk.advance(time.Millisecond)
				info, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if max > 0 && info.Size() >= max+lineLen {
					t.Fatalf("after line %d the file holds %d bytes; want it rotated at %d", i, info.Size(), max)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			waitMill(t, c)
			wantBackups := 0
			if max > 0 {
				perFile := int((max + lineLen - 1) / lineLen)
				wantBackups = (tt.lines - 1) / perFile
			}
			backups := backupNames(t, path)
			if len(backups) != wantBackups {
				t.Fatalf("backups %v, want %d", backups, wantBackups)
			}
			var all []string
			for _, name := range append(backups, filepath.Base(path)) {
				content := readFile(t, filepath.Join(dir, name))
				if name != filepath.Base(path) && int64(len(content)) < max {
					t.Errorf("backup %s holds %d bytes, less than maxSize", name, len(content))
				}
				all = append(all, seqs(t, content)...)
			}
			want := make([]string, tt.lines)
			for i := range want {
				want[i] = fmt.Sprintf("%05d", i)
			}
			if diff := cmp.Diff(want, all); diff != "" {
				t.Errorf("lines across files, in order (-want +got):\n%s", diff)
			}
		})
	}
}

// seqs returns the seq of every line of content, failing on a malformed line.
func seqs(t *testing.T, content string) []string {
	t.Helper()
	var out []string
	for line := range strings.Lines(content) {
		_, after, ok := strings.Cut(line, " seq=")
		if !ok || len(after) < 5 || int64(len(line)) != lineLen {
			t.Fatalf("malformed line %q", line)
		}
		out = append(out, after[:5])
	}
	return out
}

// TestPruneWhileRunning rotates one long-lived logger five times, a day apart,
// and checks which backups maxBackups and maxAge leave.
func TestPruneWhileRunning(t *testing.T) {
	day := 24 * time.Hour
	names := make([]string, 6)
	for i := range names {
		names[i] = "multus-" + clock.Add(time.Duration(i)*day).UTC().Format(backupTimeLayout) + ".log"
	}
	tests := []struct {
		name       string
		maxBackups int
		maxAgeDays int
		want       []string
	}{
		{"no limits", 0, 0, names[1:]},
		{"by count", 2, 0, names[4:]},
		{"by age, exactly at limit kept", 0, 2, names[3:]},
		{"age stricter than count", 4, 1, names[4:]},
		{"count stricter than age", 1, 10, names[5:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "multus.log")
			clk := &testClock{t: clock}
			l, c, err := New(Options{Level: "error", File: path, MaxSizeMB: 1, MaxBackups: tt.maxBackups, MaxAgeDays: tt.maxAgeDays, Now: clk.now})
			if err != nil {
				t.Fatal(err)
			}
			perFile := int((mib + lineLen - 1) / lineLen)
			for i := range 5 * perFile {
				if i%perFile == 0 && i > 0 {
					clk.advance(day)
				}
				logFixed(l, i)
			}
			clk.advance(day)
			logFixed(l, 0) // the fifth rotation
			c.Close()
			waitMill(t, c)
			if diff := cmp.Diff(tt.want, backupNames(t, path)); diff != "" {
				t.Errorf("backups (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCompressOffRequestPath is a thin invocation that finds the log file full:
// it rotates it, and returns while the backup's compression is still blocked in
// an injected compressor. While the compression runs, the uncompressed backup is
// complete and no .gz exists; once it ends, the .gz holds exactly the rotated
// content and the uncompressed backup is gone.
func TestCompressOffRequestPath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "multus.log")
	old := oldContent(mib)
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	halfway, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	blocking := func(dst io.Writer, src io.Reader) error {
		if _, err := io.CopyN(dst, src, int64(len(old)/2)); err != nil {
			return err
		}
		once.Do(func() { close(halfway) })
		<-release
		_, err := io.Copy(dst, src)
		return err
	}
	var c io.Closer
	done := make(chan error, 1)
	go func() {
		l, closer, err := New(Options{Level: "error", File: path, MaxSizeMB: 1, Compress: true, Now: fixedNow, compressor: blocking})
		if err != nil {
			done <- err
			return
		}
		l.Error("new")
		c = closer
		done <- closer.Close()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(patience):
		close(release)
		t.Fatal("the invocation did not return while the compression was blocked")
	}
	select {
	case <-halfway:
	case <-time.After(patience):
		t.Fatal("the backup's compression never started")
	}
	const backup = "multus-2024-05-01T10-00-00.000.log"
	if got := readFile(t, filepath.Join(dir, backup)); got != string(old) {
		t.Errorf("during compression the backup holds %d bytes, want the %d rotated", len(got), len(old))
	}
	if _, err := os.Stat(filepath.Join(dir, backup+".gz")); err == nil {
		t.Errorf("%s.gz exists before its compression ended", backup)
	}
	close(release)
	waitMill(t, c)
	if diff := cmp.Diff([]string{backup + ".gz", "multus.log"}, listDir(t, dir)); diff != "" {
		t.Fatalf("folder (-want +got):\n%s", diff)
	}
	if got := gunzip(t, filepath.Join(dir, backup+".gz")); !bytes.Equal(got, old) {
		t.Errorf("the .gz holds %d bytes that differ from the %d rotated", len(got), len(old))
	}
	if diff := cmp.Diff([]string{"new"}, messages(readFile(t, path))); diff != "" {
		t.Errorf("log file messages (-want +got):\n%s", diff)
	}
}

// gunzip returns the content of the gzip file at path, failing unless it is
// complete and valid.
func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s is not gzip: %v", path, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s is not valid gzip: %v", path, err)
	}
	return data
}

// waitMill waits for the background work on the log file behind c, which a
// thin invocation does not wait for, so that a test can look at its result and
// remove its folder.
func waitMill(t *testing.T, c io.Closer) {
	t.Helper()
	f, ok := c.(*file)
	if !ok {
		t.Fatalf("closer %T is not a log file", c)
	}
	done := make(chan struct{})
	go func() {
		f.mill.done.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(patience):
		t.Fatal("the log file's mill did not finish")
	}
}

// TestCompressBackupLeftovers compresses a backup in the states an interrupted
// or concurrent compression leaves: the result is always one complete .gz of
// the backup's content, or the backup left alone for the process working on it.
func TestCompressBackupLeftovers(t *testing.T) {
	const name = "multus-2024-05-01T10-00-00.000.log"
	content := oldContent(100_000)
	var compressed bytes.Buffer
	zw := gzip.NewWriter(&compressed)
	zw.Write(content)
	zw.Close()
	tests := []struct {
		name   string
		files  map[string][]byte
		locked bool // another process holds the backup's flock
		want   []string
	}{
		{"plain", map[string][]byte{name: content}, false, []string{name + ".gz"}},
		{"stale temporary file", map[string][]byte{name: content, name + ".gz.tmp": []byte("trunc")}, false, []string{name + ".gz"}},
		{"renamed, not removed", map[string][]byte{name: content, name + ".gz": compressed.Bytes()}, false, []string{name + ".gz"}},
		{"compressed by another process", map[string][]byte{name: content}, true, []string{name}},
		{"gone", nil, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, data := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, n), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.locked {
				other, err := os.Open(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
				if ok, err := tryLock(other); !ok {
					t.Fatalf("lock: %v", err)
				}
			}
			if err := compressBackup(filepath.Join(dir, name), copyAll); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, listDir(t, dir)); diff != "" {
				t.Fatalf("folder (-want +got):\n%s", diff)
			}
			if slices.Contains(tt.want, name+".gz") && !bytes.Equal(gunzip(t, filepath.Join(dir, name+".gz")), content) {
				t.Errorf("the .gz does not hold the backup's content")
			}
		})
	}
}

// TestFollowsOtherRotation: a logger whose file another writer rotated writes
// its next line to the new file, never to the backup, which may be compressed
// any time.
func TestFollowsOtherRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "multus.log")
	if err := os.WriteFile(path, oldContent(mib), 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{Level: "error", File: path, Now: fixedNow}
	quiet, c1, err := New(o) // MaxSizeMB 0: never rotates itself
	if err != nil {
		t.Fatal(err)
	}
	o.MaxSizeMB = 1
	rotating, c2, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	rotating.Error("first")
	quiet.Error("second")
	for _, c := range []io.Closer{c1, c2} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{"first", "second"}, messages(readFile(t, path))); diff != "" {
		t.Errorf("new file messages (-want +got):\n%s", diff)
	}
	if backup := readFile(t, filepath.Join(dir, "multus-2024-05-01T10-00-00.000.log")); string(oldContent(mib)) != backup {
		t.Errorf("the backup changed after its rotation")
	}
}
