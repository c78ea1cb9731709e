package dirwatch

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// bound is how long a test waits for something that should take milliseconds.
const bound = 10 * time.Second

// newWatcher returns a watcher of dirs, closed when the test ends. A test
// that needs fsnotify is skipped where the node cannot give it.
func newWatcher(t *testing.T, dirs []string, poll time.Duration, needEvents bool) *Watcher {
	t.Helper()
	w := New(dirs, poll, 10*time.Millisecond, nil)
	t.Cleanup(w.Close)
	if needEvents && w.fs == nil {
		t.Skip("fsnotify is not available here")
	}
	return w
}

// waitUntil runs the owner's loop, Wait after Wait, until cond holds, and fails
// the test when it does not within bound.
func waitUntil(t *testing.T, w *Watcher, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	for !cond() {
		if !w.Wait(ctx) {
			t.Fatalf("%s did not happen within %v", what, bound)
		}
	}
}

// wakes reports whether Wait returns true within bound.
func wakes(t *testing.T, w *Watcher) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	return w.Wait(ctx)
}

func watching(w *Watcher, dir string) func() bool {
	return func() bool { return slices.Contains(w.fs.WatchList(), dir) }
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestEventWakes: a change in a watched folder wakes the loop although the
// poll interval is far off, whatever the change is.
func TestEventWakes(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
	}{
		{"new file", func(t *testing.T, dir string) { touch(t, filepath.Join(dir, "00-multus.conf")) }},
		{"rename", func(t *testing.T, dir string) {
			old := filepath.Join(t.TempDir(), "kubeconfig.tmp")
			touch(t, old)
			if err := os.Rename(old, filepath.Join(dir, "kubeconfig")); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink swap", func(t *testing.T, dir string) {
			if err := os.Symlink("..data_2", filepath.Join(dir, "..data_tmp")); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w := newWatcher(t, []string{dir}, time.Hour, true)
			tt.change(t, dir)
			if !wakes(t, w) {
				t.Fatalf("no wake-up within %v", bound)
			}
		})
	}
}

// TestFolderCreatedLater: a folder that does not exist yet wakes the loop by
// poll; once it is created the next poll watches it, and from then on its
// events wake the loop without waiting for a poll. The same holds for a folder
// removed and created again, which loses its watch.
func TestFolderCreatedLater(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not-yet")
	w := newWatcher(t, []string{dir}, 20*time.Millisecond, true)
	if !wakes(t, w) {
		t.Fatal("a missing folder did not wake the loop by poll")
	}
	for round := range 2 {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, w, "watching the created folder", watching(w, dir))
		w.tick.Reset(time.Hour) // from here on only an event can wake the loop
		touch(t, filepath.Join(dir, "ready"))
		if !wakes(t, w) {
			t.Fatalf("round %d: an event in the created folder did not wake the loop", round)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		w.tick.Reset(20 * time.Millisecond)
		waitUntil(t, w, "dropping the removed folder's watch", func() bool { return !watching(w, dir)() })
	}
}

// TestPollOnly: without fsnotify (inotify exhausted on a busy node) the loop
// still wakes at every poll.
func TestPollOnly(t *testing.T) {
	dir := t.TempDir()
	w := New([]string{dir}, 20*time.Millisecond, 10*time.Millisecond, nil)
	t.Cleanup(w.Close)
	if w.fs != nil {
		w.fs.Close()
		w.fs = nil // as New leaves it when fsnotify fails
	}
	for i := range 3 {
		if !wakes(t, w) {
			t.Fatalf("poll %d did not wake the loop", i)
		}
	}
}

// TestWaitEnds: Wait returns false once the context is done, events pending or
// not.
func TestWaitEnds(t *testing.T) {
	dir := t.TempDir()
	w := newWatcher(t, []string{dir}, time.Hour, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if w.Wait(ctx) {
		t.Error("Wait with a done context returned true")
	}
	done := make(chan bool)
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- w.Wait(ctx) }()
	cancel()
	select {
	case woke := <-done:
		if woke {
			t.Error("Wait cancelled while waiting returned true")
		}
	case <-time.After(bound):
		t.Fatalf("Wait did not return within %v of its context ending", bound)
	}
}

// TestFolds: duplicate and unclean paths are one folder.
func TestFolds(t *testing.T) {
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	w := newWatcher(t, []string{a, a + "/", b, filepath.Join(base, "x", "..", "a"), b + "/./"}, time.Hour, false)
	if diff := cmp.Diff([]string{a, b}, w.dirs); diff != "" {
		t.Errorf("folders (-want +got):\n%s", diff)
	}
}
