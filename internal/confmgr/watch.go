package confmgr

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watcher wakes the manager when something in the folders it depends on
// changes, and at least every poll interval. fsnotify is only an accelerator:
// the folders may not exist yet (a readiness indicator's folder appears with
// the cluster network), a folder may be removed and created again, and inotify
// instances may run out on a busy node; polling covers all of these.
type watcher struct {
	fs       *fsnotify.Watcher // nil when fsnotify is unavailable
	dirs     []string
	log      *slog.Logger
	failed   map[string]string // last Add error per folder, to log it once
	tick     *time.Ticker
	debounce time.Duration
}

// newWatcher watches the folders holding the primary (or multusConfigFile),
// our file and the readiness indicator.
func (m *Manager) newWatcher() *watcher {
	w := &watcher{log: m.log, failed: map[string]string{}, tick: time.NewTicker(m.poll), debounce: m.debounce}
	var dirs []string
	if m.auto {
		dirs = append(dirs, m.d.MultusAutoconfigDir)
	} else {
		dirs = append(dirs, filepath.Dir(m.source))
	}
	dirs = append(dirs, filepath.Dir(m.path))
	if m.d.ReadinessIndicatorFile != "" {
		dirs = append(dirs, filepath.Dir(m.d.ReadinessIndicatorFile))
	}
	for _, d := range dirs {
		if d = filepath.Clean(d); !slices.Contains(w.dirs, d) {
			w.dirs = append(w.dirs, d)
		}
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		m.log.Warn("cannot watch files; polling every interval instead", "interval", m.poll, "error", err)
	} else {
		w.fs = fw
		w.ensure()
	}
	return w
}

// ensure watches every folder not watched yet: ones that did not exist before,
// and ones removed and created again, which drop their watch.
func (w *watcher) ensure() {
	if w.fs == nil {
		return
	}
	have := w.fs.WatchList()
	for _, d := range w.dirs {
		if slices.Contains(have, d) {
			continue
		}
		if err := w.fs.Add(d); err != nil {
			if w.failed[d] != err.Error() {
				w.failed[d] = err.Error()
				w.log.Debug("cannot watch folder yet; polling it", "folder", d, "error", err)
			}
			continue
		}
		delete(w.failed, d)
	}
}

// wait blocks until the manager should look at the disk again: a burst of
// events has been quiet for the debounce delay, or the poll interval passed.
// It returns false when ctx is done.
func (w *watcher) wait(ctx context.Context) bool {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w.fs != nil {
		events, errs = w.fs.Events, w.fs.Errors
	}
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-w.tick.C:
			w.ensure()
			return true
		case <-fire:
			return true
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if timer == nil {
				timer = time.NewTimer(w.debounce)
				fire = timer.C
			} else {
				timer.Reset(w.debounce)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflow loses events; the next poll catches up.
			w.log.Debug("file watch error", "error", err)
		}
	}
}

func (w *watcher) close() {
	w.tick.Stop()
	if w.fs != nil {
		w.fs.Close()
	}
}
